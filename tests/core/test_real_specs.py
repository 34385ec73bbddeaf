"""Every real spec in the corpus ingests with the operation counts SOURCES.md states (copied into
tests/corpus_pins.json), and retrieval on the dev questions clears the bar the evaluation contract sets."""

import pytest

from core.actions import ListSpecs, Origin, PathAttachment, UploadSpec
from core.models import SpecFormat
from core.parsing.markdown import find_endpoints
from evaluation.followups import FOLLOWUPS, load_pairs, run_followup_evaluation
from evaluation.retrieval import load_questions, metrics, run_evaluation
from tests.corpus import load_pins

pytestmark = pytest.mark.slow


async def test_real_specs_ingest_with_documented_counts_and_retrieve_well(assistant, specs_dir, request):
    expected = {pin.file: pin.operations for pin in load_pins() if "/" not in pin.file}  # not versions/
    assert len(expected) == 9
    origin = Origin("console", "local")
    for filename, count in expected.items():
        report = await assistant.ingest(UploadSpec(origin, PathAttachment(specs_dir / filename)))
        record = report.record
        if record.format is SpecFormat.MARKDOWN:
            assert len(find_endpoints((specs_dir / filename).read_text())) == count
        else:
            assert record.operation_count == count, filename
    records = await assistant.list_specs(ListSpecs(origin))
    assert {r.name for r in records} == {
        "petstore_openapi3",
        "stripe_openapi3_2023-09",
        "twilio_api_v2010_openapi3",
        "discord_api_v10_openapi3.1",
        "spotify_web_api_openapi3",
        "slack_web_api_swagger2",
        "twitter_api_v2.postman_collection",
        "github_graphql_schema",
        "hackernews_api",
    }
    stripe = next(r for r in records if r.name.startswith("stripe"))
    assert (stripe.title, stripe.version) == ("Stripe API", "2023-08-16")

    # Workspace-wide search across all nine specs still finds the identifier a user quotes.
    items = await assistant.search(origin, "how do I call chat.postMessage?")
    assert items[0].document.item == {"kind": "operation", "method": "POST", "path": "/chat.postMessage"}

    # The dev questions (each scoped to its spec, in a throwaway workspace; embeddings are cached by now).
    # Requested only here: without the questions the ingest checks above still run, then the test skips.
    eval_dir = request.getfixturevalue("eval_dir")
    questions = load_questions(eval_dir / "dev.jsonl")
    result = await run_evaluation(assistant, questions, specs_dir, log=lambda _: None)
    hybrid, baseline = metrics(result.hybrid_ranks), metrics(result.baseline_ranks)
    assert hybrid["recall@5"] >= 0.88, result.table()
    assert hybrid["mrr@10"] > baseline["mrr@10"]
    assert all(len(r) <= 10 for r in result.retrieved)


async def test_follow_ups_in_a_thread_answer_the_follow_up(assistant, specs_dir):
    """Issue 12: "and how do I delete one?" after "how do I add a new pet?" answers DELETE, on 80 real pairs.

    Floors a little under the measured figures (0.875 and 0.90; the old way of searching got 0.575 and 0.65 in
    the same run), so a regression fails while noise between machines does not. See benchmarks/RESULTS.md.
    """
    dev = await run_followup_evaluation(assistant, load_pairs(FOLLOWUPS), specs_dir, log=lambda _: None)
    assert dev.accuracy >= 0.75, dev.summary()
    assert dev.accuracy >= dev.baseline_accuracy + 0.15, dev.summary()
    heldout_file = FOLLOWUPS.with_name("followups_heldout.jsonl")
    heldout = await run_followup_evaluation(assistant, load_pairs(heldout_file), specs_dir, log=lambda _: None)
    assert heldout.accuracy >= 0.8, heldout.summary()
    # Written independently of the code and the other files, in more everyday words ("lift the ban", "get it
    # going again"); 0.55 measured against 0.25 for the old way in the same run.
    fresh_file = FOLLOWUPS.with_name("followups_fresh.jsonl")
    fresh = await run_followup_evaluation(assistant, load_pairs(fresh_file), specs_dir, log=lambda _: None)
    assert fresh.accuracy >= 0.45 and fresh.accuracy >= fresh.baseline_accuracy + 0.15, fresh.summary()
