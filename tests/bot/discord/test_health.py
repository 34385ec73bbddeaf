"""`api-assistant run` with Discord only: /health, /ready and /metrics answer on HOST:PORT; /ready is 503 naming
what is missing when the gateway can't be reached or Redis goes away."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from core.actions import Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from tests.bot.discord.fake_discord import GUILD_ID, USER_ID, FakeDiscord
from tests.ops import get, on_free_port, running, scrape, wait_for_metric, wait_for_status, wait_ready
from tests.redis_server import RedisServer

GUILD = Origin("discord", str(GUILD_ID), user=str(USER_ID), user_name="ada")


async def test_discord_only_serves_health_ready_and_metrics(
    discord_settings: Any, assistant: Any, fake: FakeDiscord, example_spec: Path
) -> None:
    await assistant.ingest(UploadSpec(GUILD, PathAttachment(example_spec), "bookshop"))
    async with running(on_free_port(discord_settings), assistant) as base:
        ready = json.loads(await wait_ready(base))
        assert set(ready["components"]) == {"model", "store", "intake", "discord"}
        assert await get(base + "/health") == (200, "ok")
        assert await get(base + "/healthz") == (200, "ok")
        assert (await get(base + "/slack/events"))[0] == 405  # only POST is routed there, and only Slack adds it

        question = fake.mention("how do I refund an order?")
        await fake.dispatch("MESSAGE_CREATE", question)
        metrics = await wait_for_metric(
            base, "api_assistant_questions_total", 1, platform="discord", outcome="answered"
        )
        assert any("POST /orders/{orderId}/refund" in c.content for c in fake.message_calls())
        assert metrics.value("api_assistant_answer_seconds_count", platform="discord") == 1
        assert metrics.value("api_assistant_uploads_total", platform="discord", action="upload", outcome="ok") == 1
        assert metrics.value("api_assistant_component_ready", component="discord") == 1

        await fake.dispatch("MESSAGE_CREATE", fake.mention("how do I refund an order?"))  # the answer cache
        metrics = await wait_for_metric(
            base, "api_assistant_questions_total", 2, platform="discord", outcome="answered"
        )
        assert metrics.value("api_assistant_cache_hits_total", cache="answers") == 1
        assert metrics.value("api_assistant_cache_misses_total", cache="answers") == 1


@contextlib.asynccontextmanager
async def silent_gateway() -> AsyncIterator[str]:
    """A gateway that accepts the WebSocket and never says hello: discord.py waits, not connected."""
    async def gateway(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/gateway", gateway)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{runner.addresses[0][1]}/gateway"
    finally:
        await runner.cleanup()


async def test_ready_is_503_naming_discord_until_the_gateway_says_hello(
    discord_settings: Any, assistant: Any
) -> None:
    async with silent_gateway() as url:
        settings = on_free_port(discord_settings).model_copy(update={"discord_gateway_url": url})
        async with running(settings, assistant) as base:
            status, body = await get(base + "/ready")
            assert status == 503
            assert json.loads(body)["not_ready"] == {"discord": "not connected to the gateway"}
            assert await get(base + "/health") == (200, "ok")  # alive, just not ready
            metrics = await scrape(base)
            assert metrics.value("api_assistant_ready") == 0
            assert metrics.value("api_assistant_component_ready", component="discord") == 0
            assert metrics.value("api_assistant_component_ready", component="store") == 1


async def test_ready_is_503_naming_redis_while_it_is_down(
    discord_settings: Any, embedder: Any, own_redis: RedisServer
) -> None:
    settings = on_free_port(discord_settings).model_copy(update={"redis_url": own_redis.url})
    async with build_assistant(settings, embedder=embedder) as assistant, running(settings, assistant) as base:
        ready = json.loads(await wait_ready(base))
        assert ready["components"]["redis"] == {"ready": True, "detail": "ok"}

        own_redis.stop()
        body = json.loads(await wait_for_status(base + "/ready", 503))
        assert body["not_ready"] == {"redis": "no answer from Redis"}
        metrics = await scrape(base)
        assert metrics.value("api_assistant_component_ready", component="redis") == 0
        assert metrics.value("api_assistant_ready") == 0

        own_redis.start()
        await wait_ready(base)
