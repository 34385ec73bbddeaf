"""The failure drills at a small scale, so a regression in how the bot rides out a fault fails CI.

`benchmarks/drills.py` against one real `api-assistant run` process (Slack HTTP mode, a real redis-server and a real
`chroma run` server on 127.0.0.1, the mock Slack Web API, the fake Groq), shared by every drill of this module: for
each fault, 3 questions a second for 1 s, during the fault (3 s, or the fault's minimum), and 3 s after it (or the
fault's minimum). Every question is answered exactly once (none lost, none answered twice), every event is acked
with 200, answers are normal again within a generous bound once the fault clears, and the fault was felt the way
it should be: Groq failures give the retrieval answer with its note, a Chroma outage a clear "temporarily
unavailable", Redis, Slack and redelivery faults nothing the user can see. The full-size figures are in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from benchmarks.drills import Services, drill, drill_services, faults

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SCALE = {"rate": 3.0, "before": 1.0, "window": 3.0, "after": 3.0}
RECOVERY_BOUND_SECONDS = 15.0  # generous: a 2-core machine shared with other test runs


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services() -> AsyncIterator[Services]:
    async with drill_services(llm_delay=0.3, timeout=60.0) as running:
        yield running


async def run_drill(services: Services, name: str) -> dict[str, Any]:
    fault = next(f for f in faults(services) if f.name == name)
    figures = await drill(services, fault, **SCALE)
    print(figures)
    whole, during = figures["whole"], figures["during"]
    # The fault felt by a full window's questions; one fewer when a question at either edge of the window was
    # sent a hair before the fault was injected or after it was cleared (8 of 9, in two full runs).
    assert during["questions"] >= SCALE["rate"] * SCALE["window"] - 1, figures
    assert whole["lost"] == 0 and whole["duplicated"] == 0, figures
    assert whole["error"] == 0, figures  # never the generic error, never an apology for an answer Slack refused
    assert figures["non_200_acks"] == 0, figures
    assert figures["recovery_s"] is not None and figures["recovery_s"] <= RECOVERY_BOUND_SECONDS, figures
    return figures


@pytest.mark.parametrize("name", ["groq_429", "groq_500", "groq_stall", "groq_slow_stream", "groq_disconnect"])
async def test_groq_failures_give_the_retrieval_answer_and_answers_come_back(services: Services, name: str) -> None:
    figures = await run_drill(services, name)
    during = figures["during"]
    assert during["fallback"] > 0, figures  # the fault was felt: the retrieval answer with its note
    assert during["unavailable"] == 0, figures


async def test_redis_killed_and_restarted_answers_continue_and_shared_state_resumes(services: Services) -> None:
    figures = await run_drill(services, "redis_kill")
    assert figures["whole"]["normal"] == figures["whole"]["questions"], figures  # answered from local state
    assert figures["degraded_logged"] >= 1 and figures["recovered_logged"] >= 1, figures
    assert figures["redis_keys_before_kill"] > 0 and figures["redis_keys_after_restart"] > 0, figures
    # Those asked while Redis was down were delivered again after it was back, and none was answered twice.
    assert figures["redelivered_after_restart"] >= 6, figures


async def test_chroma_killed_and_restarted_questions_are_answered_and_uploads_fail_cleanly(services: Services) -> None:
    figures = await run_drill(services, "chroma_kill")
    # The spec's vectors are held in memory once searched: questions on it need no store, so none is refused.
    assert figures["whole"]["normal"] == figures["whole"]["questions"], figures
    refused_upload, retried_upload = figures["upload_during_fault"], figures["upload_after_restart"]
    assert "temporarily unavailable" in refused_upload, figures
    name = refused_upload.split("`")[1].removesuffix(".json")
    assert f"Indexed `{name}`" in retried_upload, figures  # the same file shared again once Chroma is back


@pytest.mark.parametrize("name", ["slack_429", "slack_500", "slack_500_landed", "slack_redelivery"])
async def test_slack_failures_and_redeliveries_cost_no_answer(services: Services, name: str) -> None:
    figures = await run_drill(services, name)
    assert figures["whole"]["normal"] == figures["whole"]["questions"], figures
    if name == "slack_redelivery":
        assert figures["redeliveries_while_answering"] >= figures["during"]["questions"], figures
