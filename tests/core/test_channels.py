"""Channel settings in the core: a channel's default spec (`use NAME`) and specs private to one channel."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from core import messages
from core.actions import (
    AskQuestion,
    BytesAttachment,
    CheckRequest,
    DiffSpec,
    ForgetSpec,
    ListSpecs,
    Origin,
    PathAttachment,
    PurgeWorkspace,
    SetVisibility,
    UploadSpec,
    UseSpec,
)
from core.bootstrap import build_assistant
from core.channels import DEFAULT_SPEC_MARGIN, default_spec_gap, leaves_default
from core.documents import Document
from core.errors import ChannelSettingError, PermissionDeniedError, SpecNameTakenError, SpecNotFoundError
from core.models import ItemKind
from core.retrieval import RetrievedItem

WEATHER = b"""openapi: 3.0.0
info: {title: Weather API, version: "2.0"}
servers: [{url: "https://api.weather.example"}]
paths:
  /forecast:
    get:
      operationId: getForecast
      summary: Get the weather forecast for a city (temperature, rain, wind) for the next days
      parameters:
        - {name: city, in: query, required: true, schema: {type: string}}
      responses: {"200": {description: the forecast}}
  /alerts:
    get:
      operationId: listWeatherAlerts
      summary: List severe weather alerts (storms, floods, heat waves) for a region
      responses: {"200": {description: alerts}}
"""

ADMIN = Origin("slack", "T1", channel="C-GENERAL", user="U-ADMIN", is_admin=True)
TEAM = Origin("slack", "T1", channel="C-GENERAL", user="U-ALICE")
ELSEWHERE = Origin("slack", "T1", channel="C-RANDOM", user="U-ALICE")
PRIVATE = Origin("slack", "T1", channel="G-SECRET", user="U-ALICE")


async def upload_both(assistant: Any, example_spec: Path) -> None:
    await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
    await assistant.ingest(UploadSpec(TEAM, BytesAttachment("weather.yaml", WEATHER), "weather"))


def cited_specs(answer: Any) -> set[str]:
    return {c.spec for c in answer.citations}


def left_default(answer: Any) -> bool:
    return messages.default_spec_left("bookshop") in answer.notice


def item(spec: str, score: float) -> RetrievedItem:
    return RetrievedItem(spec, Document(f"{spec}-{score}", ItemKind.OPERATION, "t", "text", "embed"), score)


def test_the_gap_compares_the_best_hits_of_one_fused_ranking() -> None:
    ranked = [item("other", 0.9), item("mine", 0.5), item("other", 0.4)]
    assert default_spec_gap(ranked, "mine") == pytest.approx(0.4)
    assert leaves_default(ranked, "mine") == (DEFAULT_SPEC_MARGIN < 0.4)
    assert default_spec_gap([item("mine", 0.7), item("other", 0.6)], "mine") == pytest.approx(-0.1)
    assert not leaves_default([item("mine", 0.7), item("other", 0.6)], "mine")
    assert default_spec_gap([item("other", 0.2)], "mine") == math.inf  # the default has no hit at all
    assert default_spec_gap([item("mine", 0.2)], "mine") == -math.inf
    assert default_spec_gap([], "mine") == math.inf


async def test_use_sets_shows_and_clears_the_channel_default(assistant: Any, example_spec: Path) -> None:
    await upload_both(assistant, example_spec)
    assert await assistant.use(UseSpec(TEAM)) == messages.channel_default_shown(None)
    assert await assistant.use(UseSpec(TEAM, "bookshop")) == messages.channel_default_set("bookshop")
    assert await assistant.channel_default(TEAM) == "bookshop"
    assert await assistant.channel_default(ELSEWHERE) is None  # another channel keeps searching everything
    assert await assistant.use(UseSpec(TEAM)) == messages.channel_default_shown("bookshop")
    with pytest.raises(SpecNotFoundError):
        await assistant.use(UseSpec(TEAM, "nope"))
    with pytest.raises(ChannelSettingError):
        await assistant.use(UseSpec(TEAM, "All"))
    assert await assistant.use(UseSpec(TEAM, clear=True)) == messages.channel_default_cleared("bookshop")
    assert await assistant.use(UseSpec(TEAM, clear=True)) == messages.channel_default_cleared(None)
    assert await assistant.channel_default(TEAM) is None


async def test_a_channel_default_is_searched_first_and_left_only_when_it_clearly_does_not_fit(
    assistant: Any, example_spec: Path
) -> None:
    await upload_both(assistant, example_spec)
    await assistant.use(UseSpec(TEAM, "bookshop"))
    # "list the ..." fits both specs a little; the default answers it, with no note.
    answer = await assistant.ask(AskQuestion(TEAM, "how do I list everything?"))
    assert cited_specs(answer) <= {"bookshop"} and not left_default(answer)
    answer = await assistant.ask(AskQuestion(TEAM, "how do I refund an order?"))
    assert cited_specs(answer) == {"bookshop"} and not left_default(answer)
    # The weather is clearly not the bookshop's: every spec is searched, and the answer says so.
    answer = await assistant.ask(AskQuestion(TEAM, "what's the weather forecast for Paris tomorrow?"))
    assert "weather" in cited_specs(answer)
    assert answer.notice.startswith(messages.default_spec_left("bookshop"))
    # The same question in a channel without a default: the same answer, no note (the note is never cached).
    answer = await assistant.ask(AskQuestion(ELSEWHERE, "what's the weather forecast for Paris tomorrow?"))
    assert "weather" in cited_specs(answer) and not left_default(answer)
    # A spec named in the question wins over the default.
    answer = await assistant.ask(AskQuestion(TEAM, "severe storm alerts", spec="weather"))
    assert cited_specs(answer) == {"weather"} and not left_default(answer)


async def test_the_default_survives_a_restart_and_goes_with_its_spec(
    settings: Any, embedder: Any, example_spec: Path
) -> None:
    async with build_assistant(settings, embedder=embedder) as assistant:
        await upload_both(assistant, example_spec)
        await assistant.use(UseSpec(TEAM, "bookshop"))
        await assistant.use(UseSpec(ELSEWHERE, "weather"))
    async with build_assistant(settings, embedder=embedder) as rebuilt:  # the same data dir: a restart
        assert await rebuilt.channel_default(TEAM) == "bookshop"
        assert await rebuilt.channel_default(ELSEWHERE) == "weather"
        await rebuilt.forget(ForgetSpec(ADMIN, "bookshop"))
        assert await rebuilt.channel_default(TEAM) is None  # forgetting the spec cleared its channels
        assert await rebuilt.channel_default(ELSEWHERE) == "weather"
        await rebuilt.purge_workspace(PurgeWorkspace(Origin("slack", "T1"), "app_uninstalled"))
        assert rebuilt.registry.channel_defaults(TEAM.scope) == {}


async def test_a_private_spec_is_seen_only_in_its_channel(assistant: Any, example_spec: Path) -> None:
    await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
    report = await assistant.ingest(UploadSpec(PRIVATE, BytesAttachment("weather.yaml", WEATHER), "weather", True))
    assert report.record.channel == "G-SECRET" and report.record.private

    assert [r.name for r in await assistant.list_specs(ListSpecs(PRIVATE))] == ["bookshop", "weather"]
    assert [r.name for r in await assistant.list_specs(ListSpecs(TEAM))] == ["bookshop"]
    question = "what's the weather forecast for Paris tomorrow?"
    assert "weather" in cited_specs(await assistant.ask(AskQuestion(PRIVATE, question)))
    assert "weather" not in cited_specs(await assistant.ask(AskQuestion(TEAM, question)))
    for attempt in (
        assistant.ask(AskQuestion(TEAM, question, spec="weather")),
        assistant.use(UseSpec(TEAM, "weather")),
        assistant.diff(DiffSpec(TEAM, "weather")),
        assistant.check(CheckRequest(TEAM, "curl https://api.weather.example/forecast", spec="weather")),
        assistant.forget(ForgetSpec(ADMIN, "weather")),
    ):
        with pytest.raises(SpecNotFoundError) as refused:
            await attempt
        assert "weather" not in refused.value.user_message.replace("`weather`", "")  # named as asked, never listed
    # "what specs do you have?" from another channel does not list it either
    listed = await assistant.ask(AskQuestion(TEAM, "what specs do you have?"))
    assert "weather" not in listed.as_markdown() and "bookshop" in listed.as_markdown()
    # In its own channel it can be the default, and is marked in lists
    await assistant.use(UseSpec(PRIVATE, "weather"))
    assert await assistant.channel_default(PRIVATE) == "weather"


async def test_private_names_do_not_collide_confusingly(assistant: Any, example_spec: Path) -> None:
    await assistant.ingest(UploadSpec(PRIVATE, BytesAttachment("weather.yaml", WEATHER), "weather", True))
    await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
    # The name is taken by a spec another channel cannot see: refused without saying where it lives.
    with pytest.raises(SpecNameTakenError) as taken:
        await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "weather"))
    assert taken.value.user_message == messages.spec_name_taken("weather") and "G-SECRET" not in str(taken.value)
    # A shared spec is never replaced by a private copy.
    with pytest.raises(SpecNameTakenError, match="shared with the whole workspace"):
        await assistant.ingest(UploadSpec(PRIVATE, BytesAttachment("b.yaml", WEATHER), "bookshop", True))
    # A re-upload in its own channel keeps it private, flag or not.
    changed = WEATHER.replace(b'version: "2.0"', b'version: "2.1"')
    report = await assistant.ingest(UploadSpec(PRIVATE, BytesAttachment("weather.yaml", changed), "weather"))
    assert report.replaced and report.record.channel == "G-SECRET"
    # The terminal and the command line have no channels to keep a spec in.
    with pytest.raises(ChannelSettingError):
        await assistant.ingest(
            UploadSpec(Origin("cli", "local", user="me", is_admin=True), PathAttachment(example_spec), private=True)
        )


async def test_visibility_can_change_by_its_uploader_or_an_admin(assistant: Any, example_spec: Path) -> None:
    await assistant.ingest(UploadSpec(PRIVATE, BytesAttachment("weather.yaml", WEATHER), "weather"))
    await assistant.use(UseSpec(TEAM, "weather"))
    with pytest.raises(PermissionDeniedError):
        await assistant.set_visibility(SetVisibility(Origin("slack", "T1", channel="G-SECRET", user="U-BOB"),
                                                     "weather", True))
    record = await assistant.set_visibility(SetVisibility(PRIVATE, "weather", True))
    assert record.channel == "G-SECRET"
    assert [r.name for r in await assistant.list_specs(ListSpecs(TEAM))] == []
    assert await assistant.channel_default(TEAM) is None  # it could no longer search it there
    record = await assistant.set_visibility(SetVisibility(PRIVATE, "weather", False))
    assert not record.private
    assert [r.name for r in await assistant.list_specs(ListSpecs(TEAM))] == ["weather"]


async def test_a_discord_thread_shares_its_channels_settings(assistant: Any, example_spec: Path) -> None:
    channel = Origin("discord", "G1", channel="111", user="9")
    thread = Origin("discord", "G1", channel="222", parent_channel="111", user="9", thread="222")
    await assistant.ingest(UploadSpec(channel, PathAttachment(example_spec), "bookshop", True))
    await assistant.use(UseSpec(channel, "bookshop"))
    assert thread.channel_key == "111"
    assert await assistant.channel_default(thread) == "bookshop"
    assert [r.name for r in await assistant.list_specs(ListSpecs(thread))] == ["bookshop"]
