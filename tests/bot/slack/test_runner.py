"""`serve_slack`: Socket Mode over a local WebSocket, and HTTP mode with /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import aiohttp
import pytest

from bot.slack_app.runner import serve_slack
from core.errors import ConfigError
from tests.bot.slack.conftest import event_body, mention, sign
from tests.bot.slack.mock_slack import MockSlack
from tests.waiting import SlowGenerator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_socket_mode_end_to_end(socket_settings, indexed, mock_slack: MockSlack) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(serve_slack(socket_settings, indexed))
    try:
        await mock_slack.wait_until(lambda: mock_slack.socket_connected, timeout=10)
        opened = mock_slack.calls_to("apps.connections.open")[0]
        assert opened.headers["Authorization"] == "Bearer xapp-test-app-token"
        await mock_slack.push({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                               "retry_attempt": 0, "retry_reason": "",
                               "payload": event_body(mention("how do I refund an order?", ts="6000.000100"))})
        await mock_slack.wait_until(lambda: any(m.get("envelope_id") == "env-1" for m in mock_slack.socket_received))
        final = (await mock_slack.wait_for(  # a retrieval answer is simply posted, no "Working on it…" first
            "chat.postMessage", lambda c: any(b["type"] == "actions" for b in c.params.get("blocks") or [])))[0]
        assert "*POST /orders/{orderId}/refund*" in final.blob()
        assert final.params["thread_ts"] == "6000.000100"
    finally:
        await stop_task(task)
    assert not mock_slack.socket_connected


async def test_http_mode_serves_events_and_healthz(slack_settings, indexed) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    task = asyncio.create_task(serve_slack(slack_settings.model_copy(update={"port": port}), indexed))
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(base + "/healthz") as response:
                        assert response.status == 200 and await response.text() == "ok"
                        break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("server did not start")
            body = json.dumps({"token": "legacy", "challenge": "c-123", "type": "url_verification"})
            async with session.post(base + "/slack/events", data=body,
                                    headers={"Content-Type": "application/json", **sign(body)}) as response:
                assert response.status == 200 and "c-123" in await response.text()
    finally:
        await stop_task(task)


async def test_http_mode_needs_a_signing_secret(slack_settings, indexed) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        await serve_slack(slack_settings.model_copy(update={"slack_signing_secret": None}), indexed)
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN"):
        await serve_slack(slack_settings.model_copy(update={"slack_bot_token": None}), indexed)


async def test_http_mode_stops_taking_events_and_finishes_the_answer_in_flight(  # type: ignore[no-untyped-def]
    slack_settings, indexed, mock_slack: MockSlack
) -> None:
    generator = indexed.generator = SlowGenerator(0.5)
    port = free_port()
    stop = asyncio.Event()
    settings = slack_settings.model_copy(update={"port": port, "shutdown_grace_seconds": 10})
    task = asyncio.create_task(serve_slack(settings, indexed, stop))
    base = f"http://127.0.0.1:{port}"

    async def post_event(session: aiohttp.ClientSession, ts: str) -> int:
        body = json.dumps(event_body(mention("how do I refund an order?", ts=ts)))
        headers = {"Content-Type": "application/json", **sign(body)}
        async with session.post(base + "/slack/events", data=body, headers=headers) as response:
            return response.status

    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(base + "/healthz"):
                        break
                await asyncio.sleep(0.05)
            assert await post_event(session, "8000.000100") == 200
            await asyncio.wait_for(generator.started.wait(), 15)
            stop.set()
            await asyncio.sleep(0.05)
            try:  # the port no longer listens; a connection that was still open gets a 503 (Slack retries it)
                refused = await post_event(session, "8000.000200")
            except aiohttp.ClientConnectionError:
                refused = 503
            assert refused == 503
        await asyncio.wait_for(task, 15)
    finally:
        await stop_task(task)
    finals = [c for c in mock_slack.calls_to("chat.update") if any(b["type"] == "actions" for b in c.params["blocks"])]
    assert len(finals) == 1 and "the refund endpoint" in finals[0].blob()
    assert all(c.params.get("thread_ts") != "8000.000200" for c in mock_slack.calls_to("chat.postMessage"))
