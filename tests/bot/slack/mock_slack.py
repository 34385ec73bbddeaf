"""A local mock of the Slack Web API (plus file hosting, response_url and the Socket Mode WebSocket).

It records every call (method, params from JSON or form bodies, headers) so tests can assert on what the
real `AsyncWebClient` sent, and can be told to fail the next call(s) of a method (429 + Retry-After,
`not_in_channel`, a 500, ...), optionally after doing what was asked (`landed=True`: a 500 after the post).
It keeps the messages posted and edited (`messages`, `thread`), and serves them back through
`conversations.replies` / `conversations.history` (with their metadata when `include_all_metadata` is set).

Streaming messages (`chat.startStream` / `chat.appendStream` / `chat.stopStream`) and the assistant thread
methods (`assistant.threads.setStatus` / `setSuggestedPrompts` / `setTitle`) take the arguments Slack documents
and refuse what Slack refuses: a stream needs `thread_ts`, and outside a DM `recipient_user_id` and
`recipient_team_id`; `markdown_text` holds at most 12,000 characters; only a message still streaming can be
appended to or stopped. With `streaming = False` the mock is a Slack without the streaming methods
(`unknown_method`).

File uploads go as Slack documents them (what `files_upload_v2` does): `files.getUploadURLExternal` (filename,
length) returns an `upload_url` and a `file_id`; the bytes are POSTed to that URL (HTTP 200 "OK - <length>");
`files.completeUploadExternal` with `files` ([{"id", "title"}]) and `channel_id` or `channels` (with `thread_ts`,
exactly one) shares them, as a message whose text is the `initial_comment` (`uploads`, `shared()`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-bot-token"
APP_TOKEN = "xapp-test-app-token"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
MAX_MARKDOWN_CHARS = 12_000  # Slack: markdown_text of chat.startStream / appendStream / stopStream
MAX_SUGGESTED_PROMPTS = 4  # Slack: assistant.threads.setSuggestedPrompts
STREAM_METHODS = frozenset({"chat.startStream", "chat.appendStream", "chat.stopStream"})


@dataclass
class Call:
    """One request the mock received."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    def blob(self) -> str:
        """Everything the caller sent, as one string (for "never contains" assertions)."""
        return json.dumps(self.params, ensure_ascii=False)


@dataclass
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    landed: bool = False  # the call took effect before the failure was returned
    when: Callable[[Call], bool] | None = None  # only calls that match (fail_always)


@dataclass
class Message:
    """A message as Slack keeps it: posted, maybe edited since."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    metadata: dict[str, Any] | None
    streaming: bool = False  # started by chat.startStream and not stopped yet

    def as_payload(self, with_metadata: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": "message", "bot_id": BOT_ID, "ts": self.ts, "text": self.text,
                                   "blocks": self.blocks}
        if self.thread_ts:
            payload["thread_ts"] = self.thread_ts
        if with_metadata and self.metadata:
            payload["metadata"] = self.metadata
        return payload

    def blob(self) -> str:
        return json.dumps({"text": self.text, "blocks": self.blocks}, ensure_ascii=False)


@dataclass
class Upload:
    """A file being uploaded (`files.getUploadURLExternal`), then its bytes, then where it was shared."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None  # POSTed to the upload URL
    title: str = ""
    channel: str = ""  # shared there by files.completeUploadExternal ("" while not shared)
    thread_ts: str | None = None
    initial_comment: str = ""


@dataclass
class HostedFile:
    data: bytes
    payload: dict[str, Any]
    chunked: bool = False


class MockSlack:
    """Start with `await start()`; `api_url` is what `SLACK_API_URL` should point at."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.file_requests: list[Call] = []
        self.responses: list[Call] = []
        self.socket_received: list[dict[str, Any]] = []
        self.files: dict[str, HostedFile] = {}
        self.messages: list[Message] = []
        self.uploads: dict[str, Upload] = {}  # by file id
        self.upload_requests: list[Call] = []  # POSTs to upload URLs
        self._failures: dict[str, list[Failure]] = defaultdict(list)
        self._always_failing: dict[str, Failure] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._ts = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.add_user("U1", "ada")
        self.add_user("U2", "grace")
        self.add_user("UADMIN", "linus", admin=True)
        self._runner: web.AppRunner | None = None
        self.base = ""
        self.streaming = True  # False: a Slack without chat.startStream / appendStream / stopStream

    # ---- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/files-pri/{key}/{name}", self._file)
        app.router.add_get("/redirect/{name}", self._redirect)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.base + "/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"{self.base}/respond/{key}"

    # ---- scripting ---------------------------------------------------------------------------------

    def fail(self, method: str, *, error: str = "internal_error", status: int = 200,
             retry_after: int | None = None, times: int = 1, landed: bool = False) -> None:
        """Make the next `times` calls of `method` fail (`landed`: after doing what they asked)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        for _ in range(times):
            self._failures[method].append(Failure(status, {"ok": False, "error": error}, headers, landed))

    def fail_always(self, method: str, *, error: str = "internal_error", status: int = 500, landed: bool = False,
                    when: Callable[[Call], bool] | None = None, retry_after: int | None = None) -> None:
        """Make every call of `method` (that matches `when`) fail from now on (`recover` ends it)."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._always_failing[method] = Failure(status, {"ok": False, "error": error}, headers, landed, when)

    def recover(self, method: str) -> None:
        self._always_failing.pop(method, None)
        self._failures.pop(method, None)

    def add_file(self, name: str, data: bytes, *, file_id: str = "F1", size: int | None = None,
                 chunked: bool = False, url: str | None = None) -> dict[str, Any]:
        """Host a file; returns its Slack file object (as events carry it)."""
        key = f"{TEAM_ID}-{file_id}"
        default_url = f"{self.base}/files-pri/{key}/{name}"
        payload = {
            "id": file_id, "name": name, "title": name, "mimetype": "application/octet-stream",
            "filetype": name.rsplit(".", 1)[-1], "size": len(data) if size is None else size,
            "url_private": url or default_url, "url_private_download": (url or default_url) + "?download=1",
        }
        self.files[key] = HostedFile(data, payload, chunked)
        return payload

    def add_user(self, user_id: str, name: str, *, admin: bool = False, owner: bool = False) -> None:
        """A workspace member, as `users.info` returns them."""
        self.users[user_id] = {
            "id": user_id, "team_id": TEAM_ID, "name": name, "real_name": name.title(), "is_admin": admin,
            "is_owner": owner, "is_primary_owner": False, "is_bot": False,
            "profile": {"display_name": name, "real_name": name.title()},
        }

    # ---- queries -----------------------------------------------------------------------------------

    def shared(self) -> list[Upload]:
        """The files shared so far (uploaded and completed), in order."""
        return [u for u in self.uploads.values() if u.channel]

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def thread(self, channel: str, thread_ts: str | None) -> list[Message]:
        """The bot's messages as Slack shows them in a thread (None: at the channel's top level), oldest first."""
        return [m for m in self.messages if m.channel == channel and m.thread_ts == thread_ts]

    async def wait_for(self, method: str, predicate: Callable[[Call], bool] = lambda _: True, *,
                       count: int = 1, timeout: float = 15.0) -> list[Call]:
        """Wait until `count` calls of `method` match `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            pool = self.responses if method == "respond" else self.calls_to(method)
            matching = [c for c in pool if predicate(c)]
            if len(matching) >= count:
                return matching
            if time.monotonic() > deadline:
                seen = [(c.method, c.blob()[:300]) for c in self.calls[-10:]]
                raise AssertionError(f"timed out waiting for {count}x {method}; last calls: {seen}")
            await asyncio.sleep(0.02)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("timed out")
            await asyncio.sleep(0.02)

    # ---- Socket Mode -------------------------------------------------------------------------------

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    async def push(self, envelope: dict[str, Any]) -> None:
        for ws in self._sockets:
            if not ws.closed:
                await ws.send_str(json.dumps(envelope))

    # ---- handlers ----------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "GET":
            pass
        elif request.content_type == "application/json":
            params.update(await request.json())
        else:
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        call = Call(method, params, dict(request.headers))
        self.calls.append(call)
        failure = self._failures[method].pop(0) if self._failures[method] else self._always_failing.get(method)
        if failure is not None and (failure.when is None or failure.when(call)):
            if failure.landed:
                self._answer(method, params)
            return web.json_response(failure.body, status=failure.status, headers=failure.headers)
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if request.headers.get("Authorization") != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        return web.json_response(self._answer(method, params))

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method in STREAM_METHODS:
            return self._stream(method, params)
        if method.startswith("assistant.threads."):
            return self._assistant_thread(method, params)
        if method == "auth.test":
            return {"ok": True, "url": "https://test.slack.com/", "team": "Test", "user": "apibot",
                    "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}
        if method == "chat.postMessage":
            ts = self._post(params, str(params.get("text") or "")).ts
            return {"ok": True, "channel": params.get("channel"), "ts": ts,
                    "message": {"text": params.get("text"), "ts": ts, "bot_id": BOT_ID}}
        if method == "chat.update":
            for message in self.messages:
                if message.channel == params.get("channel") and message.ts == params.get("ts"):
                    if message.streaming:  # a stream is finished with chat.stopStream first
                        return {"ok": False, "error": "cant_update_message"}
                    message.text, message.blocks = str(params.get("text") or ""), _blocks(params)
                    message.metadata = _metadata(params) or message.metadata  # kept when not given, as Slack does
                    break
            else:
                return {"ok": False, "error": "message_not_found"}
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts"), "text": params.get("text")}
        if method in ("conversations.replies", "conversations.history"):
            with_metadata = str(params.get("include_all_metadata")) in ("1", "true", "True")
            channel = params.get("channel")
            if method == "conversations.history":  # the top level, newest first
                found = [m for m in reversed(self.messages) if m.channel == channel and not m.thread_ts]
            else:
                thread = params.get("ts")
                found = [m for m in self.messages if m.channel == channel and thread in (m.ts, m.thread_ts)]
            return {"ok": True, "messages": [m.as_payload(with_metadata) for m in found], "has_more": False}
        if method == "files.getUploadURLExternal":
            return self._upload_url(params)
        if method == "files.completeUploadExternal":
            return self._complete_upload(params)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": "1700000000.999999"}
        if method == "files.info":
            for hosted in self.files.values():
                if hosted.payload["id"] == params.get("file"):
                    return {"ok": True, "file": hosted.payload}
            return {"ok": False, "error": "file_not_found"}
        if method == "users.info":
            found = self.users.get(str(params.get("user")))
            return {"ok": True, "user": found} if found else {"ok": False, "error": "user_not_found"}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.base.replace("http://", "ws://") + "/socket"}
        return {"ok": True}

    def _post(self, params: dict[str, Any], text: str, *, streaming: bool = False) -> Message:
        self._ts += 1
        message = Message(str(params.get("channel")), f"1700000000.{self._ts:06d}", params.get("thread_ts"), text,
                          _blocks(params), _metadata(params), streaming)
        self.messages.append(message)
        return message

    def _find(self, channel: Any, ts: Any) -> Message | None:
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    def _stream(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if not self.streaming:
            return {"ok": False, "error": "unknown_method"}
        text = params.get("markdown_text")
        if text is not None and (not isinstance(text, str) or len(text) > MAX_MARKDOWN_CHARS):
            return {"ok": False, "error": "msg_too_long"}
        channel = str(params.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if method == "chat.startStream":
            if not params.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments"}
            if not channel.startswith("D"):  # outside a DM Slack must be told who the stream is for
                if not params.get("recipient_team_id"):
                    return {"ok": False, "error": "missing_recipient_team_id"}
                if not params.get("recipient_user_id"):
                    return {"ok": False, "error": "missing_recipient_user_id"}
            message = self._post({**params, "blocks": None, "metadata": None}, text or "", streaming=True)
            return {"ok": True, "channel": channel, "ts": message.ts}
        found = self._find(channel, params.get("ts"))
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        if not found.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        if method == "chat.appendStream":
            if not text:
                return {"ok": False, "error": "invalid_arguments"}  # markdown_text is required
            found.text += text
        else:  # chat.stopStream: the last text, then blocks rendered below it
            found.text += text or ""
            found.blocks = _blocks(params)
            found.metadata = _metadata(params) or found.metadata
            found.streaming = False
        return {"ok": True, "channel": channel, "ts": found.ts}

    def _assistant_thread(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("channel_id"):
            return {"ok": False, "error": "channel_not_found"}
        required = {
            "assistant.threads.setStatus": ("thread_ts", "status"),
            "assistant.threads.setTitle": ("thread_ts", "title"),
            "assistant.threads.setSuggestedPrompts": ("prompts",),
        }.get(method)
        if required is None:
            return {"ok": False, "error": "unknown_method"}
        # An empty status clears it, so only its presence is required.
        if any(params.get(name) is None or (name != "status" and not params.get(name)) for name in required):
            return {"ok": False, "error": "invalid_arguments"}
        if method == "assistant.threads.setSuggestedPrompts":
            prompts = params["prompts"]
            prompts = json.loads(prompts) if isinstance(prompts, str) else prompts
            if not isinstance(prompts, list) or len(prompts) > MAX_SUGGESTED_PROMPTS or not all(
                isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts
            ):
                return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True}

    def _upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        """files.getUploadURLExternal: `filename` and `length` (bytes, at least 1) are required."""
        filename, length = str(params.get("filename") or ""), str(params.get("length") or "")
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        if int(length) == 0:
            return {"ok": False, "error": "missing_argument"}  # Slack: "typically only when `length` is 0"
        file_id = f"F{len(self.uploads) + 100:08d}"
        self.uploads[file_id] = Upload(file_id, filename, int(length))
        return {"ok": True, "upload_url": f"{self.base}/upload/v1/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL: the bytes, raw or as a multipart form; HTTP 200 when they are taken."""
        self.upload_requests.append(Call("upload", {}, dict(request.headers)))
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None or upload.channel:
            return web.Response(status=404, text="not found")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next(iter(form.values()), None)
            data = part.file.read() if part is not None and hasattr(part, "file") else b""
        else:
            data = await request.read()
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    def _complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        """files.completeUploadExternal: `files` ([{id, title}]) required; `channel_id` or `channels` (channel or
        user ids: a user's is the app's DM with them) share it, `thread_ts` with exactly one of them."""
        try:
            files = json.loads(params.get("files") or "")
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) and f.get("id") for f in files):
            return {"ok": False, "error": "invalid_arguments"}
        targets = [str(params["channel_id"])] if params.get("channel_id") else []
        targets += [c for c in str(params.get("channels") or "").split(",") if c]
        thread_ts = params.get("thread_ts") or None
        if len(targets) > 1 or (thread_ts and not targets):
            return {"ok": False, "error": "invalid_arguments"}
        uploads = [self.uploads.get(str(f["id"])) for f in files]
        if any(u is None or u.data is None or u.channel for u in uploads):
            return {"ok": False, "error": "file_not_found"}
        channel = _dm_of(targets[0]) if targets else ""
        comment = str(params.get("initial_comment") or "")
        shown = []
        for upload, entry in zip(uploads, files, strict=True):
            assert upload is not None
            upload.title = str(entry.get("title") or upload.filename)
            upload.channel, upload.thread_ts, upload.initial_comment = channel, thread_ts, comment
            shown.append({"id": upload.file_id, "title": upload.title, "name": upload.filename})
        if channel:  # the file appears in the channel as a message, with the comment as its text
            self._post({"channel": channel, "thread_ts": thread_ts}, comment)
        return {"ok": True, "files": shown}

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.file_requests.append(Call("file", dict(request.query), dict(request.headers)))
        hosted = self.files.get(request.match_info["key"])
        if hosted is None:
            return web.Response(status=404)
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        if not hosted.chunked:
            return web.Response(body=hosted.data, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(hosted.data), 1024):
            await response.write(hosted.data[start : start + 1024])
        await response.write_eof()
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        self.file_requests.append(Call("redirect", {}, dict(request.headers)))
        raise web.HTTPFound("https://evil.example.com/" + request.match_info["name"])

    async def _respond(self, request: web.Request) -> web.Response:
        self.responses.append(Call("respond", await request.json(), dict(request.headers)))
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A1"}, "debug_info": {"host": "mock"}}))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.socket_received.append(json.loads(message.data))
        return ws


def _dm_of(target: str) -> str:
    """A channel id as given; a user id stands for the app's DM with that user."""
    return "D" + target if target[:1] in ("U", "W") else target


def _blocks(params: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = params.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def _metadata(params: dict[str, Any]) -> dict[str, Any] | None:
    metadata = params.get("metadata")
    return json.loads(metadata) if isinstance(metadata, str) else metadata
