"""Fixtures: a fake Discord on 127.0.0.1, and the real bot (real core, real discord.py) connected to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from pydantic import SecretStr

from bot.discord_app.client import AssistantClient
from bot.discord_app.runner import build_discord_client, discord_endpoints
from core.actions import Origin, PathAttachment, UploadSpec
from tests.bot.discord.fake_discord import GUILD_ID, TOKEN, USER_ID, FakeDiscord


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def discord_settings(settings: Any, fake: FakeDiscord) -> Any:
    return settings.model_copy(
        update={
            "discord_bot_token": SecretStr(TOKEN), "discord_api_url": fake.api_url,
            "discord_gateway_url": fake.gateway_url,
        }
    )


@pytest.fixture
async def bot(
    fake: FakeDiscord, discord_settings: Any, assistant: Any, example_spec: Any
) -> AsyncIterator[AssistantClient]:
    """The bot, connected and ready, with the bookshop spec indexed in the fake guild's workspace."""
    uploader = Origin("discord", str(GUILD_ID), user=str(USER_ID), user_name="ada")
    await assistant.ingest(UploadSpec(uploader, PathAttachment(example_spec), "bookshop"))
    async with running_bot(discord_settings, assistant, progress_interval=0.1) as client:
        yield client
    _assert_mentions_denied(fake)


@asynccontextmanager
async def running_bot(settings: Any, assistant: Any, **options: Any) -> AsyncIterator[AssistantClient]:
    """A bot process connected to the fake Discord until the block ends (a second one is what a restart looks like)."""
    with discord_endpoints(settings):
        client = build_discord_client(settings, assistant, guild_ready_timeout=0.05, edit_interval=0.3, **options)
        async with client:
            task = asyncio.create_task(client.start(TOKEN))
            await asyncio.wait_for(client.wait_until_ready(), 15)
            try:
                yield client
            finally:
                await client.close()
                with suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 5)


def _assert_mentions_denied(fake: FakeDiscord) -> None:
    """After every end-to-end test: nothing the bot sent could ping anyone."""
    for call in fake.message_calls():
        body = call.body.get("data", call.body) if call.path.endswith("/callback") else call.body
        assert body.get("allowed_mentions", {}).get("parse") == [], f"{call.method} {call.path} may ping"
        assert "@everyone" not in call.content and "@here" not in call.content
