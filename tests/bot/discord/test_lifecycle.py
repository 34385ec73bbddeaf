"""Leaving: removal from a server (GUILD_DELETE) purges its workspace; a stop finishes answers in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from bot.discord_app.runner import serve_discord
from core.actions import AskQuestion, ListSpecs, Origin, PathAttachment, UploadSpec
from core.state import NS_ANSWERS, workspace_prefix
from core.store import collection_name
from tests.bot.discord.fake_discord import GUILD_ID, FakeDiscord
from tests.waiting import SlowGenerator, wait_for_log

GUILD = Origin("discord", str(GUILD_ID))
OTHER = Origin("discord", "999")


async def test_guild_remove_purges_that_server_only(
    bot: Any, fake: FakeDiscord, assistant: Any, example_spec: Path
) -> None:
    await assistant.ingest(UploadSpec(OTHER, PathAttachment(example_spec), "bookshop"))
    for origin in (GUILD, OTHER):
        await assistant.ask(AskQuestion(origin, "how do I refund an order?"))  # a cached answer in each
    assert len(await assistant.list_specs(ListSpecs(GUILD))) == 1
    [kept] = await assistant.list_specs(ListSpecs(OTHER))

    with capture_logs() as logs:
        outage = asyncio.create_task(bot.wait_for("guild_unavailable", timeout=10))
        await fake.dispatch("GUILD_DELETE", {"id": str(GUILD_ID), "unavailable": True})  # an outage: keep all
        await outage
        back = asyncio.create_task(bot.wait_for("guild_available", timeout=10))
        await fake.dispatch("GUILD_CREATE", fake.guild())  # the server is back
        await back
        assert not any(e["event"] == "workspace_purged" for e in logs)
        assert len(await assistant.list_specs(ListSpecs(GUILD))) == 1
        await fake.dispatch("GUILD_DELETE", {"id": str(GUILD_ID)})  # now the bot was removed
        purged = await wait_for_log(logs, "workspace_purged")

    assert purged["workspace"] == f"discord:{GUILD_ID}" and purged["reason"] == "guild_remove"
    assert purged["specs"] == 1 and purged["vectors"] == 9 and purged["cached_answers"] == 1
    audit = next(e for e in logs if e["event"] == "audit")
    assert audit["action"] == "purge" and audit["workspace"] == f"discord:{GUILD_ID}"
    assert await assistant.list_specs(ListSpecs(GUILD)) == []
    assert assistant.registry.original_names(GUILD.scope) == []
    chroma = assistant.store._client
    assert collection_name(GUILD.scope) not in {c.name for c in chroma.list_collections()}
    assert await assistant.state.delete_prefix(NS_ANSWERS, workspace_prefix(GUILD.scope)) == 0

    assert [r.index_version for r in await assistant.list_specs(ListSpecs(OTHER))] == [kept.index_version]
    assert assistant.registry.original_names(OTHER.scope) == [kept.original_path]
    assert await assistant.store.versions(OTHER.scope) == {kept.index_version}
    assert await assistant.state.delete_prefix(NS_ANSWERS, workspace_prefix(OTHER.scope)) == 1
    assert bot.get_guild(GUILD_ID) is None


async def test_stop_finishes_the_answer_in_flight_and_ignores_new_messages(
    fake: FakeDiscord, discord_settings: Any, assistant: Any, example_spec: Path
) -> None:
    await assistant.ingest(UploadSpec(GUILD, PathAttachment(example_spec), "bookshop"))
    generator = assistant.generator = SlowGenerator(0.5)
    stop = asyncio.Event()
    settings = discord_settings.model_copy(update={"shutdown_grace_seconds": 10})
    with capture_logs() as logs:
        task = asyncio.create_task(serve_discord(settings, assistant, stop))
        try:
            await wait_for_log(logs, "discord_ready")
            first = fake.mention("how do I refund an order?")
            await fake.dispatch("MESSAGE_CREATE", first)
            await asyncio.wait_for(generator.started.wait(), 15)
            stop.set()
            await asyncio.sleep(0.05)
            second = fake.mention("how do I delete a customer?")
            await fake.dispatch("MESSAGE_CREATE", second)
            await asyncio.wait_for(task, 20)
        finally:
            task.cancel()
    answered = [c for c in fake.message_calls() if "the refund endpoint" in c.content]
    assert answered, "the answer in flight was never delivered"
    replies = [c.body.get("message_reference") or {} for c in fake.sent("POST") if isinstance(c.body, dict)]
    assert str(first["id"]) in {str(r.get("message_id")) for r in replies}
    assert str(second["id"]) not in {str(r.get("message_id")) for r in replies}
    refused = [e for e in logs if e["event"] == "work_refused_shutting_down"]
    assert [e["kind"] for e in refused] == ["discord_message"]
    events = [e["event"] for e in logs]
    assert events.index("shutdown_drained") < events.index("discord_stopped")
    assert fake.connections == 1
