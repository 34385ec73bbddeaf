"""The load test at a small scale, so a regression in exactly-once delivery under concurrency fails CI.

`benchmarks/load.py` against a real `api-assistant run` process (Slack HTTP mode, mock Slack Web API, fake
Groq with 300 ms to the first token): 20 users at once for a few seconds, then a burst of 30 questions
arriving together. Every question gets exactly one answer, none is refused, every event is acked with 200.
Latencies are printed, not asserted: they belong to the benchmark (benchmarks/RESULTS.md).
"""

import pytest

from benchmarks.load import bot_under_load, closed_loop, open_loop
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "core" / "examples" / "bookshop_openapi.yaml"


@pytest.mark.slow
async def test_every_question_under_load_is_answered_exactly_once():
    async with bot_under_load(llm_delay=0.3, timeout=120) as run:
        await run.upload_spec(EXAMPLE)
        for figures in (await closed_loop(run, users=20, seconds=4), await open_loop(run, rate=30, seconds=1)):
            print(figures)
            assert figures["questions"] >= 20
            assert figures["answered"] == figures["questions"], figures
            assert figures["lost"] == figures["duplicated"] == figures["refused"] == figures["errors"] == 0, figures
            assert figures["non_200_acks"] == 0, figures
