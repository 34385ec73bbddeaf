"""Channel settings through the fake Discord: `/api use` and specs private to one channel."""

from __future__ import annotations

from typing import Any

from core import messages
from core.actions import Origin
from core.bootstrap import build_assistant
from tests.bot.discord.fake_discord import CHANNEL_ID, GUILD_ID, THREAD_ID, FakeDiscord
from tests.bot.discord.test_bot import callback, run_slash

OTHER_CHANNEL = 300_000_000_000_000_099  # another text channel of the guild
WEATHER = b"""openapi: 3.0.0
info: {title: Weather API, version: "2.0"}
paths:
  /forecast:
    get:
      operationId: getForecast
      summary: Get the weather forecast for a city (temperature, rain, wind) for the next days
      responses: {"200": {description: the forecast}}
"""


def in_channel(interaction: dict[str, Any], channel: int, *, thread_of: int | None = None) -> dict[str, Any]:
    """The same interaction sent from another channel (or, with `thread_of`, a thread of that channel)."""
    interaction["channel_id"] = str(channel)
    interaction["channel"] = {**interaction["channel"], "id": str(channel), "name": "elsewhere"}
    if thread_of is not None:
        interaction["channel"] |= {"type": 11, "parent_id": str(thread_of)}
    return interaction


async def test_use_sets_shows_and_clears_the_channel_default(
    bot: Any, fake: FakeDiscord, discord_settings: Any, embedder: Any
) -> None:
    shown = await run_slash(fake, fake.interaction("use"), "default spec")
    assert shown.content == messages.channel_default_shown(None)
    use = fake.interaction("use", {"name": "bookshop"})
    done = await run_slash(fake, use, "search `bookshop` first")
    assert done.content == messages.channel_default_set("bookshop")
    assert not (callback(fake, use)[0].body.get("data") or {}).get("flags")  # the channel sees the change
    specs = await run_slash(fake, fake.interaction("specs"), "Specs indexed here")
    assert "`bookshop` — Bookshop API 1.2.0" in specs.content and messages.default_marker() in specs.content
    # A thread of the channel shares its default; another channel has none.
    in_thread = in_channel(fake.interaction("use"), THREAD_ID, thread_of=CHANNEL_ID)
    assert (await run_slash(fake, in_thread, "first")).content == messages.channel_default_shown("bookshop")
    elsewhere = in_channel(fake.interaction("use"), OTHER_CHANNEL)
    assert (await run_slash(fake, elsewhere, "default spec")).content == messages.channel_default_shown(None)

    # Kept in the registry: a new process on the same data finds it.
    async with build_assistant(discord_settings, embedder=embedder) as rebuilt:
        here = Origin("discord", str(GUILD_ID), channel=str(CHANNEL_ID))
        assert await rebuilt.channel_default(here) == "bookshop"

    cleared = await run_slash(fake, fake.interaction("use", {"name": "all"}), "no longer")
    assert cleared.content == messages.channel_default_cleared("bookshop")
    assert (await run_slash(fake, fake.interaction("use"), "default spec")).content == (
        messages.channel_default_shown(None))


async def test_a_private_upload_is_seen_only_in_its_channel(bot: Any, fake: FakeDiscord) -> None:
    spec = fake.attachment("weather.yaml", served=WEATHER)
    upload = fake.interaction("upload", {"file": spec["id"], "private": True}, attachments=[spec])
    done = await run_slash(fake, upload, "Indexed `weather`")
    assert messages.uploaded_private("weather") in done.content

    here = await run_slash(fake, fake.interaction("specs"), "Specs indexed here")
    assert "`weather`" in here.content and messages.private_marker() in here.content
    elsewhere = await run_slash(fake, in_channel(fake.interaction("specs"), OTHER_CHANNEL), "Specs indexed here")
    assert "weather" not in elsewhere.content and "`bookshop`" in elsewhere.content
    refused = in_channel(fake.interaction("ask", {"question": "forecast for Paris", "spec": "weather"}), OTHER_CHANNEL)
    assert "There's no spec called `weather` here" in (await run_slash(fake, refused, "no spec called")).content
    taken = fake.attachment("weather.yaml", served=WEATHER.replace(b"2.0", b"2.1"))
    clash = in_channel(fake.interaction("upload", {"file": taken["id"]}, attachments=[taken]), OTHER_CHANNEL)
    assert (await run_slash(fake, clash, "already used")).content == messages.spec_name_taken("weather")
    answer = await run_slash(fake, fake.interaction("ask", {"question": "weather forecast for Paris?"}), "Sources")
    assert "GET /forecast" in answer.content


async def test_a_mention_with_a_file_and_private_keeps_it_in_the_channel(bot: Any, fake: FakeDiscord,
                                                                          assistant: Any) -> None:
    spec = fake.attachment("weather.yaml", served=WEATHER)
    await fake.dispatch("MESSAGE_CREATE", fake.mention("forecasts --private", attachments=[spec]))
    await fake.wait_for(lambda c: "Indexed `forecasts`" in c.content)
    record = assistant.registry.get(f"discord:{GUILD_ID}", "forecasts")
    assert record is not None and record.channel == str(CHANNEL_ID)
