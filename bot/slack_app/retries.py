"""When a Slack Web API call is tried again, and when it must not be.

Slack has no idempotency key: a `chat.postMessage` tried again after a failure whose outcome is unknown can
post the message twice. Slack documents its `internal_error` and `fatal_error` answers (HTTP 500) with "it's
possible some aspect of the operation succeeded before the error was raised"; a timeout or a connection dropped
mid-request says nothing either. Only a 429 (`ratelimited`), a 503 (`service_unavailable`: the request was not
served) and a connection that never opened say the call did nothing.

So the client's retry handlers (`retry_handlers`) try every other method again after any server error or
dropped connection (editing a message, adding a reaction, reading: doing it twice does no harm), but a method
that posts a message only when the failure says it did nothing. For the other failures of a post the caller
looks for the message before posting again (`bot.slack_app.replies.Poster`). Retries back off exponentially
with jitter and stop `RETRY_SECONDS` after the first server error.

A 429 is tried again after the `Retry-After` Slack asks for, for as long as `RATE_LIMIT_SECONDS` after the first
one (not a fixed number of tries: a drill of 10 s of 429s turned answers in flight into apologies after three).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

RETRY_SECONDS = 15.0  # how long a call keeps being tried again after Slack's first server error
BACKOFF_SECONDS = 0.5  # the first wait before trying again; it doubles each time (with jitter)
SERVER_ERROR_RETRIES = 6  # at most; RETRY_SECONDS usually ends them first (0.5 + 1 + 2 + 4 + 8 s)
CONNECTION_RETRIES = 2
RATE_LIMIT_SECONDS = 30.0  # how long a call keeps being tried again while Slack answers 429 (after each Retry-After)
RATE_LIMIT_RETRIES = 30  # at most; RATE_LIMIT_SECONDS ends them first unless Retry-After is under a second

# Methods that create something each time they are called: never repeated after an unknown outcome (starting a
# stream posts a message; an append tried again could show the same text twice).
POSTING_METHODS = frozenset({
    "chat.postMessage", "chat.postEphemeral", "chat.meMessage", "chat.scheduleMessage",
    "files.upload", "files.completeUploadExternal", "chat.startStream", "chat.appendStream",
})
UNCERTAIN_ERRORS = frozenset({"internal_error", "fatal_error"})  # Slack: part of the call may have happened
NOT_DONE_ERRORS = frozenset({"ratelimited", "service_unavailable"})  # the call was turned away before it ran
NOT_DONE_STATUSES = frozenset({429, 503})


def backoff(attempt: int) -> float:
    """Seconds to wait before try number `attempt` + 1 (0: the first retry): exponential, half of it random."""
    base: float = BACKOFF_SECONDS * 2**attempt
    return base / 2 + random.uniform(0, base / 2)


def _transient_answer(status: int, error: str) -> bool:
    return status >= 500 or status in NOT_DONE_STATUSES or error in UNCERTAIN_ERRORS | NOT_DONE_ERRORS


def _not_done_answer(status: int, error: str) -> bool:
    return status in NOT_DONE_STATUSES or error in NOT_DONE_ERRORS


def _status_and_error(exc: SlackApiError) -> tuple[int, str]:
    response = exc.response  # a SlackResponse, or aiohttp's own when the body could not be read
    status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error") or "") if isinstance(data, dict) else ""
    return status, error


def transient(exc: BaseException) -> bool:
    """Whether a failed call failed because of Slack's side or the network, not because of the request."""
    if isinstance(exc, SlackApiError):
        return _transient_answer(*_status_and_error(exc))
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def may_have_happened(exc: BaseException) -> bool:
    """Whether a failed call may still have taken effect (a post tried again could then post twice)."""
    if not transient(exc):
        return False
    if isinstance(exc, SlackApiError):
        return not _not_done_answer(*_status_and_error(exc))
    return not isinstance(exc, aiohttp.ClientConnectorError)  # the connection never opened: nothing was sent


def _method(request: HttpRequest) -> str:
    return request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class ServerErrorRetryHandler(AsyncRetryHandler):
    """Tries a call again after Slack's server errors (5xx, `internal_error`, ...), within `RETRY_SECONDS`.

    A posting method (`POSTING_METHODS`) is tried again only after an answer that says it did nothing (503,
    `service_unavailable`).
    """

    def __init__(self, max_retry_count: int = SERVER_ERROR_RETRIES) -> None:
        super().__init__(max_retry_count)

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None:
            return False
        body: dict[str, Any] = response.body if isinstance(response.body, dict) else {}
        status, code = response.status_code, str(body.get("error") or "")
        if status == 429 or not _transient_answer(status, code):
            return False  # 429s are the rate-limit handler's, honouring Retry-After
        if _method(request) in POSTING_METHODS and not _not_done_answer(status, code):
            return False
        values = state.custom_values if state.custom_values is not None else {}
        state.custom_values = values
        first_failure = values.setdefault("server_error_at", time.monotonic())
        delay = backoff(state.current_attempt)
        if time.monotonic() + delay - first_failure > RETRY_SECONDS:
            return False
        values["server_error_delay"] = delay
        return True

    async def prepare_for_next_attempt_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        """Wait the delay `_can_retry_async` chose, then let the client try again."""
        state.next_attempt_requested = True
        values = state.custom_values or {}
        await asyncio.sleep(float(values.pop("server_error_delay", 0.0)))
        state.increment_current_attempt()


class RateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """The SDK's handling of 429s (wait `Retry-After`, then try again), bounded by time rather than by count.

    A call is tried again while the wait Slack asks for still ends within `RATE_LIMIT_SECONDS` of its first 429.
    A 429 says the call did nothing, so posts are tried again too.
    """

    def __init__(self, max_retry_count: int = RATE_LIMIT_RETRIES) -> None:
        super().__init__(max_retry_count)

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        values = state.custom_values if state.custom_values is not None else {}
        state.custom_values = values
        first = values.setdefault("rate_limited_at", time.monotonic())
        return time.monotonic() + _retry_after(response) - first <= RATE_LIMIT_SECONDS


def _retry_after(response: HttpResponse) -> float:
    """The seconds a 429 asks to wait (1 when it does not say, as the SDK assumes)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return max(0.0, float(values[0]))
            except ValueError:
                break
    return 1.0


class ConnectionErrorRetryHandler(AsyncConnectionErrorRetryHandler):
    """The SDK's retry of dropped connections, except that a posting method is retried only if it never connected."""

    async def _can_retry_async(
        self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _method(request) in POSTING_METHODS:
            return isinstance(error, aiohttp.ClientConnectorError)
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


def retry_handlers() -> list[AsyncRetryHandler]:
    """The `AsyncWebClient`'s retry handlers: 429s (after Retry-After), server errors, dropped connections."""
    return [
        RateLimitRetryHandler(),
        ServerErrorRetryHandler(),
        ConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
    ]
