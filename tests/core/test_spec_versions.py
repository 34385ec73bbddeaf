"""Spec versions end to end: re-uploads keep history, the reply says what changed, `diff` compares versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from core import messages
from core.actions import BytesAttachment, DiffSpec, ForgetSpec, Origin, UploadSpec
from core.commands.catalogue import Invocation, command
from core.commands.handlers import run_command
from core.errors import DiffUnavailableError, SpecNotFoundError
from core.replies import DiffReply, IngestReply, SpecListReply
from tests.core.test_commands import ADMIN, Recording


def versions_of(example_spec: Path) -> list[bytes]:
    """Three versions of the bundled example: v2 drops an operation and adds one, v3 adds a required field."""
    first = yaml.safe_load(example_spec.read_text())
    second = yaml.safe_load(example_spec.read_text())
    removed_path = next(iter(second["paths"]))
    second["paths"].pop(removed_path)
    listing = {"summary": "List gift cards", "responses": {"200": {"description": "ok"}}}
    second["paths"]["/gift-cards"] = {"get": listing}
    third = yaml.safe_load(yaml.safe_dump(second))
    third["paths"]["/gift-cards"]["post"] = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}}}}},
        "responses": {"201": {"description": "made"}},
    }
    third["paths"]["/gift-cards"]["get"]["summary"] = "List every gift card"
    return [yaml.safe_dump(v).encode() for v in (first, second, third)]


async def upload(assistant: Any, data: bytes) -> IngestReply:
    sink = Recording()
    invocation = Invocation(command("upload"), ADMIN, {"file": BytesAttachment("shop.yaml", data), "name": "shop"})
    await run_command(assistant, invocation, sink)
    assert isinstance(sink.reply, IngestReply)
    return sink.reply


async def test_reuploads_are_versions_and_their_replies_say_what_broke(assistant: Any, example_spec: Path) -> None:
    one, two, three = versions_of(example_spec)
    first = await upload(assistant, one)
    assert not any("breaking" in line for line in first.changes)
    second = await upload(assistant, two)
    assert second.replaced
    assert second.changes[0] == messages.upload_changes_heading(1)
    assert "operation removed" in second.changes[1]
    assert any("operation added" in line for line in second.changes)
    third = await upload(assistant, three)
    assert third.changes[0] == messages.upload_changes_heading(0)

    sink = Recording()
    await run_command(assistant, Invocation(command("specs"), ADMIN, {}), sink)
    assert isinstance(sink.reply, SpecListReply)
    assert [s.versions for s in sink.reply.specs] == [3]

    latest = await assistant.diff(DiffSpec(ADMIN, "shop"))
    assert (latest.old.number, latest.new.number) == (2, 3)
    assert latest.diff.breaking == ()  # a new operation, even with a required body, breaks no existing client
    assert latest.diff.added == ("POST /gift-cards",)
    whole = await assistant.diff(DiffSpec(ADMIN, "shop", "1", "v3"))
    assert len(whole.diff.removed) == 1 and whole.diff.breaking_count >= 1
    assert whole.summary().index("Breaking") < whole.summary().index("Other changes")

    sink = Recording()
    await run_command(assistant, Invocation(command("diff"), ADMIN, {"name": "shop", "before": "1"}), sink)
    assert isinstance(sink.reply, DiffReply) and "from version 1" in sink.reply.text
    assert sink.reply.report is not None and sink.reply.report.filename == "shop-diff-v1-v3.txt"
    assert b"BREAKING" in sink.reply.report.content


async def test_friendly_errors(assistant: Any, example_spec: Path) -> None:
    one, two, _ = versions_of(example_spec)
    with pytest.raises(SpecNotFoundError):
        await assistant.diff(DiffSpec(ADMIN, "shop"))
    await upload(assistant, one)
    with pytest.raises(DiffUnavailableError) as only_one:
        await assistant.diff(DiffSpec(ADMIN, "shop"))
    assert only_one.value.user_message == messages.diff_only_one_version("shop")
    await upload(assistant, two)
    with pytest.raises(DiffUnavailableError) as bad:
        await assistant.diff(DiffSpec(ADMIN, "shop", "7"))
    assert bad.value.user_message == messages.diff_bad_version("shop", "7", [1, 2])
    with pytest.raises(DiffUnavailableError):
        await assistant.diff(DiffSpec(ADMIN, "shop", "2", "2"))


async def test_history_is_pruned_and_forgotten_with_the_spec(assistant: Any, example_spec: Path) -> None:
    assistant.library.settings = assistant.settings.model_copy(update={"spec_history": 1})
    for data in versions_of(example_spec):
        await upload(assistant, data)
    assert [v.number for v in assistant.registry.history(ADMIN.scope, "shop")] == [2, 3]
    assert len(assistant.registry.original_names(ADMIN.scope)) == 2
    await assistant.forget(ForgetSpec(ADMIN, "shop"))
    assert assistant.registry.history(ADMIN.scope, "shop") == []
    await assistant.sweep_leftovers(stale_after=3600)
    assert assistant.registry.original_names(ADMIN.scope) == []


async def test_a_graphql_reupload_is_diffed_by_field(assistant: Any) -> None:
    origin = Origin("console", "local", user="you", is_admin=True)
    old = b"type Query { issue(id: ID!): Issue viewer: Issue }\ntype Issue { id: ID! }\n"
    new = b"type Query { issue(id: ID!, owner: String!): Issue }\ntype Issue { id: ID! }\n"
    await assistant.ingest(UploadSpec(origin, BytesAttachment("gh.graphql", old), "gh"))
    report = await assistant.ingest(UploadSpec(origin, BytesAttachment("gh.graphql", new), "gh"))
    assert report.diff is not None
    assert {c.rule for c in report.diff.diff.breaking} == {"graphql-field-removed", "graphql-new-required-argument"}
