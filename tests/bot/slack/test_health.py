"""`api-assistant run` with Slack: /health, /ready and /metrics in Socket Mode and HTTP mode (one port with
/slack/events), and with Slack and Discord at once; the metrics move after real questions."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aiohttp

from tests.bot.discord.fake_discord import TOKEN, FakeDiscord
from tests.bot.slack.conftest import event_body, mention, sign
from tests.bot.slack.mock_slack import TEAM_ID, MockSlack
from tests.ops import get, on_free_port, running, scrape, wait_for_metric, wait_for_status, wait_ready

QUESTION = "how do I refund an order?"


def has_actions(call: Any) -> bool:
    return any(b["type"] == "actions" for b in call.params.get("blocks") or [])


async def test_socket_mode_serves_health_ready_and_metrics(  # type: ignore[no-untyped-def]
    socket_settings, indexed, mock_slack: MockSlack
) -> None:
    async with running(on_free_port(socket_settings), indexed) as base:
        ready = json.loads(await wait_ready(base))
        assert ready["ready"] is True and ready["not_ready"] == {}
        assert set(ready["components"]) == {"model", "store", "intake", "slack"}
        assert await get(base + "/health") == (200, "ok")
        assert await get(base + "/healthz") == (200, "ok")
        before = await scrape(base)
        assert before.value("api_assistant_questions_total", platform="slack", outcome="answered") == 0
        assert before.value("api_assistant_component_ready", component="slack") == 1

        await mock_slack.push({"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                               "retry_attempt": 0, "retry_reason": "",
                               "payload": event_body(mention(QUESTION, ts="6100.000100"))})
        await mock_slack.wait_for("chat.postMessage", has_actions)  # quick: simply posted
        metrics = await wait_for_metric(
            base, "api_assistant_questions_total", 1, platform="slack", outcome="answered"
        )
        assert metrics.value("api_assistant_answer_seconds_count", platform="slack") == 1
        assert 0 < metrics.value("api_assistant_answer_seconds_sum", platform="slack") < 30
        assert metrics.value("api_assistant_retrieval_seconds_count") == 1
        assert metrics.value("api_assistant_uploads_total", platform="slack", action="upload", outcome="ok") == 1
        assert metrics.value("api_assistant_specs_indexed") == 1
        assert metrics.value("api_assistant_documents_indexed") == 9
        assert metrics.value("api_assistant_cache_misses_total", cache="query_embeddings") == 1
        assert metrics.value("api_assistant_cache_misses_total", cache="answers") == 1
        assert metrics.value("api_assistant_ready") == 1
        assert metrics.value("process_cpu_seconds_total") > 0
        assert metrics.value("process_resident_memory_bytes") > 0
        assert metrics.value("api_assistant_data_dir_bytes") > 0
    assert await get(base + "/health") == (0, "")  # stopped with the process's work


async def test_http_mode_serves_events_and_health_on_one_port(  # type: ignore[no-untyped-def]
    slack_settings, indexed, mock_slack: MockSlack, monkeypatch
) -> None:
    monkeypatch.setattr("bot.slack_app.runner.AUTH_RETRY_SECONDS", 3.0)  # plenty for one scrape, short to wait
    async with running(on_free_port(slack_settings), indexed) as base:
        # Start-up accepted the token; then it is revoked (a rejected token at start-up ends the process).
        assert len(mock_slack.calls_to("auth.test")) == 1
        mock_slack.fail("auth.test", error="invalid_auth")
        status, body = await get(base + "/ready")
        assert status == 503
        assert json.loads(body)["not_ready"] == {"slack": "auth.test failed: invalid_auth"}
        metrics = await scrape(base)  # the failure stands for AUTH_RETRY_SECONDS: Slack is not asked again
        assert metrics.value("api_assistant_ready") == 0
        assert metrics.value("api_assistant_component_ready", component="slack") == 0
        assert len(mock_slack.calls_to("auth.test")) == 2
        # A server error is not tried again within the probe (the client would, for seconds): asked once, and
        # the failure stands until the next pause.
        await asyncio.sleep(3.1)
        mock_slack.fail("auth.test", error="internal_error", status=500)
        status, body = await get(base + "/ready")
        assert (status, json.loads(body)["not_ready"]) == (503, {"slack": "auth.test failed: internal_error"})
        assert len(mock_slack.calls_to("auth.test")) == 3
        await wait_ready(base)  # asked again after the pause: this time the token is accepted
        ready_calls = len(mock_slack.calls_to("auth.test"))
        await wait_ready(base)
        assert len(mock_slack.calls_to("auth.test")) == ready_calls  # once accepted, never asked again
        assert await get(base + "/health") == (200, "ok")

        async with aiohttp.ClientSession() as session:
            challenge = json.dumps({"token": "legacy", "challenge": "c-9", "type": "url_verification"})
            async with session.post(base + "/slack/events", data=challenge,
                                    headers={"Content-Type": "application/json", **sign(challenge)}) as response:
                assert response.status == 200 and "c-9" in await response.text()
            event = json.dumps(event_body(mention(QUESTION, ts="6200.000100")))
            async with session.post(base + "/slack/events", data=event,
                                    headers={"Content-Type": "application/json", **sign(event)}) as response:
                assert response.status == 200
            async with session.post(base + "/somewhere-else", data="{}") as response:
                assert response.status == 404
        await mock_slack.wait_for("chat.postMessage", has_actions)  # quick: simply posted
        metrics = await wait_for_metric(
            base, "api_assistant_questions_total", 1, platform="slack", outcome="answered"
        )
        assert metrics.value("api_assistant_component_ready", component="slack") == 1


async def test_slack_and_discord_at_once(  # type: ignore[no-untyped-def]
    socket_settings, indexed, mock_slack: MockSlack
) -> None:
    from pydantic import SecretStr

    from core.actions import Origin, PathAttachment, UploadSpec
    from tests.bot.discord.fake_discord import GUILD_ID, USER_ID
    from tests.conftest import REPO_ROOT

    fake = FakeDiscord()
    await fake.start()
    try:
        spec = REPO_ROOT / "core" / "examples" / "bookshop_openapi.yaml"
        await indexed.ingest(UploadSpec(Origin("discord", str(GUILD_ID), user=str(USER_ID)), PathAttachment(spec)))
        settings = on_free_port(socket_settings).model_copy(update={
            "discord_bot_token": SecretStr(TOKEN), "discord_api_url": fake.api_url,
            "discord_gateway_url": fake.gateway_url,
        })
        async with running(settings, indexed) as base:
            ready = json.loads(await wait_ready(base))
            assert {"slack", "discord"} <= set(ready["components"])
            question = fake.mention(QUESTION)
            await fake.dispatch("MESSAGE_CREATE", question)
            await mock_slack.push({"envelope_id": "env-2", "type": "events_api", "accepts_response_payload": False,
                                   "retry_attempt": 0, "retry_reason": "",
                                   "payload": event_body(mention(QUESTION, ts="6300.000100"))})
            await wait_for_metric(base, "api_assistant_questions_total", 1, platform="discord", outcome="answered")
            metrics = await wait_for_metric(
                base, "api_assistant_questions_total", 1, platform="slack", outcome="answered"
            )
            assert metrics.value("api_assistant_uploads_total", platform="discord", action="upload", outcome="ok") == 1
            assert metrics.value("api_assistant_specs_indexed") == 2
            assert metrics.value("api_assistant_workspaces") == 2
    finally:
        await fake.stop()


async def test_ready_waits_for_a_start_up_re_index_after_a_model_change(  # type: ignore[no-untyped-def]
    socket_settings, indexed, mock_slack: MockSlack
) -> None:
    [record] = indexed.registry.list_records(f"slack:{TEAM_ID}")
    indexed.registry.put(replace(record, embedding_model=""))  # indexed before models were recorded
    real_parser, go_on = indexed.parser, asyncio.Event()

    class GatedParser:
        async def parse(self, *args: Any, **kwargs: Any) -> Any:
            await go_on.wait()
            return await real_parser.parse(*args, **kwargs)

    indexed.parser = GatedParser()
    try:
        await indexed.check_embedding_model(reindex=True)  # what start-up does under `run`
        async with running(on_free_port(socket_settings), indexed) as base:
            await wait_for_status(base + "/ready", 503)
            status, body = await get(base + "/ready")
            assert status == 503
            assert json.loads(body)["not_ready"] == {"reindex": "re-indexing after an embedding model change (0/1)"}
            assert await get(base + "/health") == (200, "ok")  # alive meanwhile
            go_on.set()
            ready = json.loads(await wait_ready(base))
            assert ready["components"]["reindex"] == {"ready": True, "detail": "ok"}
            [rebuilt] = indexed.registry.list_records(f"slack:{TEAM_ID}")
            assert rebuilt.index_version != record.index_version and rebuilt.embedding_model
    finally:
        indexed.parser = real_parser
