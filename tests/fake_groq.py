"""A local fake of Groq's OpenAI-compatible chat-completions API, for tests and benchmarks.

The real groq SDK talks to it: `AsyncGroq(api_key=..., base_url=fake.base_url)` (or `Settings(groq_base_url=...)`)
posts to `POST /openai/v1/chat/completions`. It answers with JSON (`"stream": false`) or SSE chunks
(`"stream": true`) exactly like the real API, including the final chunk with `finish_reason` and `x_groq.usage`,
then `data: [DONE]`.

Every request is recorded (headers, JSON body). Behaviours are scripted per request, in order:

    async with start_fake_groq() as fake:
        fake.script(RateLimited(retry_after=0.05), Reply("Use `POST /refunds` [1]."))
        ...
        assert len(fake.requests) == 2

Requests are told apart by purpose, from their system prompt: answers (`script`, `default`, `requests`), reranks
(`script_rerank`, `rerank_default`, `rerank_requests`; `ranking(3, 1)` scripts an order) and phrasings
(`script_phrasings`, `phrasings_default`, `phrasing_requests`; `phrased({...})` scripts them). Each purpose has
its own script, so a test of answers is not disturbed by the rerank call before each answer. By default a rerank
keeps the fused order (`[1]`) and phrasings are empty (`{}`); `all_requests` has every request in order.

When a script is empty, its default answers. `fake.latency(first_token=..., per_chunk=...)` adds fixed delays to
every reply, for benchmarks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.phrasings import SYSTEM_PROMPT as PHRASINGS_PROMPT
from core.rerank import SYSTEM_PROMPT as RERANK_PROMPT

CHAT_PATH = "/openai/v1/chat/completions"
DEFAULT_TEXT = "This is a fake answer [1]."


@dataclass(frozen=True)
class Reply:
    """Answer with `text`, split into chunks of `chunk_chars` characters when streaming."""

    text: str = DEFAULT_TEXT
    chunk_chars: int = 12
    finish_reason: str = "stop"
    chunk_delay: float = 0.0  # seconds between streamed chunks


@dataclass(frozen=True)
class RateLimited:
    """HTTP 429 with `retry-after` (seconds), like Groq's rate limiter."""

    retry_after: float = 0.05


@dataclass(frozen=True)
class ServerError:
    """An HTTP 5xx with an OpenAI-style error body (optionally with `retry-after`, to keep retrying tests fast)."""

    status: int = 500
    retry_after: float | None = None


@dataclass(frozen=True)
class HttpError:
    """Any other HTTP error (e.g. 401 invalid key, 404 unknown model, 400 bad request)."""

    status: int
    code: str = "invalid_request_error"
    message: str = "request rejected"


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` (longer than the client timeout, to provoke one), then behave like `then`."""

    seconds: float
    then: Behaviour | None = None


@dataclass(frozen=True)
class Disconnect:
    """Close the connection without sending any response."""


@dataclass(frozen=True)
class BrokenStream:
    """Start a normal SSE stream of `text`, then cut the connection after `after_chunks` chunks."""

    text: str = "The answer starts fine and then"
    after_chunks: int = 2
    chunk_chars: int = 8


@dataclass(frozen=True)
class TruncatedStream:
    """Stream some chunks and end the body cleanly, but without a final chunk or `[DONE]`."""

    text: str = "A half-written answer"
    chunk_chars: int = 8


@dataclass(frozen=True)
class StreamError:
    """Send chunks, then an SSE `error` object in the stream (as Groq does for mid-stream failures)."""

    text: str = "Partial"
    message: str = "internal error during generation"


Behaviour = (
    Reply | RateLimited | ServerError | HttpError | Delay | Disconnect | BrokenStream | TruncatedStream | StreamError
)

Purpose = str  # "answer", "rerank" or "phrasings"


def ranking(*numbers: int) -> Reply:
    """A rerank reply naming candidates by number, best first (a JSON array, as the reranker asks for)."""
    return Reply(json.dumps(list(numbers)))


def phrased(goals: dict[int, list[str]]) -> Reply:
    """A phrasings reply: operation number -> user-phrased goals (a JSON object, as the phraser asks for)."""
    return Reply(json.dumps({str(number): texts for number, texts in goals.items()}))


_PURPOSES = {RERANK_PROMPT.split("\n", 1)[0]: "rerank", PHRASINGS_PROMPT.split("\n", 1)[0]: "phrasings"}


def purpose_of(body: Any) -> Purpose:
    """What a request is for, from the first line of its system prompt."""
    messages = body.get("messages", []) if isinstance(body, dict) else []
    system = next((m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "system"), "")
    return _PURPOSES.get(str(system).split("\n", 1)[0], "answer")


@dataclass
class RecordedRequest:
    """One request the client made."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent."""
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def system(self) -> str:
        """The system prompt (empty when none)."""
        return next((m["content"] for m in self.messages if m.get("role") == "system"), "")

    @property
    def last_user(self) -> str:
        """The content of the last user message."""
        return next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")

    @property
    def authorization(self) -> str:
        """The Authorization header as sent."""
        return self.headers.get("Authorization", "")


class FakeGroq:
    """The fake server's state: the script of behaviours, the default reply, latency and recorded requests."""

    def __init__(self) -> None:
        self.all_requests: list[RecordedRequest] = []
        self.requests: list[RecordedRequest] = []  # answers only
        self.rerank_requests: list[RecordedRequest] = []
        self.phrasing_requests: list[RecordedRequest] = []
        self.default: Behaviour = Reply()
        self.rerank_default: Behaviour = ranking(1)  # the fused order, unchanged
        self.phrasings_default: Behaviour = Reply("{}")
        self.base_url = ""
        self.model_seen: list[str] = []
        self._scripts: dict[Purpose, list[Behaviour]] = {"answer": [], "rerank": [], "phrasings": []}
        self._first_token_delay = 0.0
        self._per_chunk_delay = 0.0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    def script(self, *behaviours: Behaviour) -> FakeGroq:
        """Queue behaviours for the next answer requests, one per request, in order."""
        self._scripts["answer"].extend(behaviours)
        return self

    def script_rerank(self, *behaviours: Behaviour) -> FakeGroq:
        """Queue behaviours for the next rerank requests (`ranking(...)`, errors, delays, garbage replies)."""
        self._scripts["rerank"].extend(behaviours)
        return self

    def script_phrasings(self, *behaviours: Behaviour) -> FakeGroq:
        """Queue behaviours for the next phrasings requests (`phrased({...})`, errors, delays, garbage)."""
        self._scripts["phrasings"].extend(behaviours)
        return self

    def latency(self, first_token: float = 0.0, per_chunk: float = 0.0) -> FakeGroq:
        """Fixed delays for every reply: before the first byte, and between streamed chunks (benchmarks)."""
        self._first_token_delay = first_token
        self._per_chunk_delay = per_chunk
        return self

    @property
    def pending(self) -> int:
        """Scripted behaviours not used yet, of every purpose."""
        return sum(len(script) for script in self._scripts.values())

    def _default(self, purpose: Purpose) -> Behaviour:
        return {"rerank": self.rerank_default, "phrasings": self.phrasings_default}.get(purpose, self.default)

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_post(CHAT_PATH, self._chat)
        app.router.add_get("/openai/v1/models", self._models)
        return app

    # ---- handlers ----------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            raw = await request.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            recorded = RecordedRequest(request.method, request.path, dict(request.headers), body)
            purpose = purpose_of(body)
            self.all_requests.append(recorded)
            {"answer": self.requests, "rerank": self.rerank_requests, "phrasings": self.phrasing_requests}[
                purpose
            ].append(recorded)
            script = self._scripts[purpose]
            behaviour = script.pop(0) if script else self._default(purpose)
            return await self._behave(request, body if isinstance(body, dict) else {}, behaviour, purpose)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _behave(
        self, request: web.Request, body: dict[str, Any], behaviour: Behaviour, purpose: Purpose = "answer"
    ) -> web.StreamResponse:
        if isinstance(behaviour, Delay):
            await asyncio.sleep(behaviour.seconds)
            return await self._behave(request, body, behaviour.then or self._default(purpose), purpose)
        if isinstance(behaviour, RateLimited):
            return _error(429, "rate_limit_exceeded", "Rate limit reached", {"retry-after": f"{behaviour.retry_after}"})
        if isinstance(behaviour, ServerError):
            headers = {"retry-after": f"{behaviour.retry_after}"} if behaviour.retry_after is not None else None
            return _error(behaviour.status, "internal_server_error", "Internal Server Error", headers)
        if isinstance(behaviour, HttpError):
            return _error(behaviour.status, behaviour.code, behaviour.message)
        if isinstance(behaviour, Disconnect):
            return await _drop(request)
        model = str(body.get("model", "fake-model"))
        self.model_seen.append(model)
        if self._first_token_delay:
            await asyncio.sleep(self._first_token_delay)
        if not body.get("stream"):
            text = behaviour.text if isinstance(behaviour, Reply | BrokenStream | TruncatedStream | StreamError) else ""
            return web.json_response(self._completion(model, text, body))
        return await self._stream(request, model, body, behaviour)

    async def _stream(
        self, request: web.Request, model: str, body: dict[str, Any], behaviour: Behaviour
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "x-request-id": self._id()}
        )
        await response.prepare(request)
        chunk_id = "chatcmpl-" + self._id()
        first = self._chunk(chunk_id, model, {"role": "assistant", "content": ""}, None)
        await response.write(_sse(first))
        if isinstance(behaviour, BrokenStream):
            for part in _split(behaviour.text, behaviour.chunk_chars)[: behaviour.after_chunks]:
                await response.write(_sse(self._chunk(chunk_id, model, {"content": part}, None)))
            await asyncio.sleep(0.01)
            return await _drop(request, response)
        if isinstance(behaviour, TruncatedStream):
            for part in _split(behaviour.text, behaviour.chunk_chars):
                await response.write(_sse(self._chunk(chunk_id, model, {"content": part}, None)))
            await response.write_eof()
            return response
        if isinstance(behaviour, StreamError):
            await response.write(_sse(self._chunk(chunk_id, model, {"content": behaviour.text}, None)))
            await response.write(_sse({"error": {"message": behaviour.message, "type": "internal_server_error"}}))
            await response.write_eof()
            return response
        reply = behaviour if isinstance(behaviour, Reply) else Reply()
        delay = reply.chunk_delay or self._per_chunk_delay
        for part in _split(reply.text, reply.chunk_chars):
            if delay:
                await asyncio.sleep(delay)
            await response.write(_sse(self._chunk(chunk_id, model, {"content": part}, None)))
        last = self._chunk(chunk_id, model, {}, reply.finish_reason)
        last["x_groq"] = {"id": "req_" + self._id(), "usage": _usage(body, reply.text)}
        await response.write(_sse(last))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ---- payloads ----------------------------------------------------------------------------------

    def _id(self) -> str:
        return f"fake{next(self._ids):06d}"

    def _chunk(self, chunk_id: str, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _completion(self, model: str, text: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-" + self._id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(body, text),
            "x_groq": {"id": "req_" + self._id()},
        }

    async def _cancel_handlers(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0)


def _split(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _usage(body: dict[str, Any], text: str) -> dict[str, Any]:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []) if isinstance(m, dict))
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(text) // 4 + 1
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "queue_time": 0.001,
        "prompt_time": 0.001,
        "completion_time": 0.01,
        "total_time": 0.011,
    }


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = "rate_limit_exceeded" if status == 429 else ("internal_server_error" if status >= 500 else code)
    return web.json_response(
        {"error": {"message": message, "type": kind, "code": code}}, status=status, headers=headers or {}
    )


async def _drop(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    """Close the TCP connection (after flushing what was written) without completing the response."""
    if request.transport is not None:
        request.transport.close()
    await asyncio.sleep(0)
    raise asyncio.CancelledError  # aiohttp treats a cancelled handler on a closed connection quietly


@asynccontextmanager
async def start_fake_groq() -> AsyncIterator[FakeGroq]:
    """Run a fake Groq on 127.0.0.1 (a free port) for the duration of the block."""
    fake = FakeGroq()
    runner = web.AppRunner(fake.app(), access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, shutdown_timeout=0.5)
    await site.start()
    host, port = runner.addresses[0][:2]
    fake.base_url = f"http://{host}:{port}"
    try:
        yield fake
    finally:
        await fake._cancel_handlers()
        await runner.cleanup()


@contextmanager
def fake_groq_in_thread() -> Iterator[FakeGroq]:
    """A fake Groq served by an event loop in a thread of its own, for code that runs its own loop (`main()`)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-groq", daemon=True)
    thread.start()
    server = start_fake_groq()
    try:
        yield asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(10)
    finally:
        asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


class ScriptedGenerator:
    """An in-memory `AnswerGenerator` for service tests that need no HTTP at all.

    Yields `parts` for each call (or raises `error`), and records (question, evidence, history) per call.
    """

    def __init__(self, *parts: str, error: Exception | None = None) -> None:
        self.parts = parts or (DEFAULT_TEXT,)
        self.error = error
        self.calls: list[tuple[str, list[Any], list[tuple[str, str]]]] = []
        self.closed = False

    async def stream(self, question: str, evidence: Any, history: Any = ()) -> AsyncIterator[str]:
        self.calls.append((question, list(evidence), list(history)))
        if self.error is not None:
            raise self.error
        for part in self.parts:
            yield part

    async def aclose(self) -> None:
        self.closed = True
