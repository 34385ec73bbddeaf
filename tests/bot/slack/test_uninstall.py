"""Uninstalling the app (or revoking its bot token) purges that workspace, through the real signed HTTP path."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from core.actions import AskQuestion, ListSpecs, Origin, PathAttachment, UploadSpec
from core.assistant import Assistant
from core.state import NS_ANSWERS, workspace_prefix
from core.store import collection_name
from tests.bot.slack.conftest import SlackHttp
from tests.bot.slack.mock_slack import TEAM_ID, MockSlack
from tests.waiting import wait_for_log

T1 = Origin("slack", TEAM_ID)
T2 = Origin("slack", "T2")


async def two_workspaces(assistant: Assistant, example_spec: Path) -> tuple[str, str]:
    """T1 (indexed by the fixture) and T2 each have the spec and a cached answer; returns their originals."""
    await assistant.ingest(UploadSpec(T2, PathAttachment(example_spec), "bookshop"))
    for origin in (T1, T2):
        await assistant.ask(AskQuestion(origin, "how do I refund an order?"))
    [one] = await assistant.list_specs(ListSpecs(T1))
    [two] = await assistant.list_specs(ListSpecs(T2))
    return one.original_path, two.original_path


async def assert_only_t1_purged(assistant: Assistant, t1_original: str, t2_original: str) -> None:
    assert await assistant.list_specs(ListSpecs(T1)) == []
    assert t1_original not in assistant.registry.original_names(T1.scope)
    chroma = assistant.store._client  # type: ignore[attr-defined]
    assert collection_name(T1.scope) not in {c.name for c in chroma.list_collections()}
    assert assistant.registry.versions_of(T1.scope) == set()
    assert await assistant.state.delete_prefix(NS_ANSWERS, workspace_prefix(T1.scope)) == 0  # none left
    [kept] = await assistant.list_specs(ListSpecs(T2))
    assert assistant.registry.original_names(T2.scope) == [t2_original]
    assert await assistant.store.versions(T2.scope) == {kept.index_version}
    assert await assistant.state.delete_prefix(NS_ANSWERS, workspace_prefix(T2.scope)) == 1  # still cached


async def test_app_uninstalled_purges_that_workspace_only(
    slack_http: SlackHttp, mock_slack: MockSlack, example_spec: Path
) -> None:
    assistant = slack_http.bot.assistant
    t1_original, t2_original = await two_workspaces(assistant, example_spec)
    with capture_logs() as logs:
        result = await slack_http.event({"type": "app_uninstalled"})
        assert result.status == 200
        purged = await wait_for_log(logs, "workspace_purged")
    assert purged["workspace"] == "slack:T1" and purged["reason"] == "app_uninstalled"
    assert purged["specs"] == 1 and purged["vectors"] == 9 and purged["cached_answers"] == 1
    audit = next(e for e in logs if e["event"] == "audit")
    assert audit["action"] == "purge" and audit["workspace"] == "slack:T1" and audit["outcome"] == "ok"
    await assert_only_t1_purged(assistant, t1_original, t2_original)
    assert not mock_slack.calls_to("chat.postMessage")  # nobody left to tell


async def test_tokens_revoked_purges_only_when_the_bot_token_is_revoked(
    slack_http: SlackHttp, example_spec: Path
) -> None:
    assistant = slack_http.bot.assistant
    t1_original, t2_original = await two_workspaces(assistant, example_spec)
    with capture_logs() as logs:
        await slack_http.event({"type": "tokens_revoked", "tokens": {"oauth": ["U1"]}})
        await wait_for_log(logs, "slack_user_tokens_revoked")
    assert len(await assistant.list_specs(ListSpecs(T1))) == 1  # a user's token: the bot still works there

    with capture_logs() as logs:
        await slack_http.event({"type": "tokens_revoked", "tokens": {"oauth": ["U1"], "bot": ["UBOT"]}})
        purged = await wait_for_log(logs, "workspace_purged")
    assert purged["workspace"] == "slack:T1" and purged["reason"] == "tokens_revoked"
    await assert_only_t1_purged(assistant, t1_original, t2_original)
