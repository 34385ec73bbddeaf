"""The core's Prometheus metrics: each question outcome, Groq calls and retries over real HTTP (fake Groq),
uploads, feedback, caches, the index size, and the system readings (disk walk, cgroup limits)."""

import asyncio
import os
from pathlib import Path

import pytest

from core.actions import AskQuestion, BytesAttachment, ForgetSpec, Origin, PathAttachment, UploadSpec
from core.bootstrap import build_assistant
from core.config import Settings
from core.errors import NothingIndexedError, RateLimitedError, SpecNotFoundError
from core.metrics import LATENCY_BUCKETS, cpu_limit_cores, directory_bytes, memory_limit_bytes
from tests.fake_groq import Reply, ServerError, start_fake_groq
from tests.ops import Scrape, parse

TEAM = Origin("slack", "T1", channel="C1", user="U1")
QUESTION = "how do I refund an order?"


def metrics_of(assistant) -> Scrape:
    return parse(assistant.telemetry.render().decode())


def questions(metrics: Scrape, outcome: str, platform: str = "slack") -> float:
    return metrics.value("api_assistant_questions_total", platform=platform, outcome=outcome)


async def upload(assistant, origin, attachment, name="bookshop"):
    return await assistant.ingest(UploadSpec(origin, attachment, name))


async def test_question_outcomes_and_latencies(tmp_path, embedder, example_spec):
    settings = Settings(data_dir=tmp_path / "data", rate_limit_burst=3, rate_limit_requests_per_minute=1,
                        _env_file=None)
    async with build_assistant(settings, embedder=embedder) as assistant:
        with pytest.raises(NothingIndexedError):  # refused: nothing indexed yet
            await assistant.ask(AskQuestion(TEAM, QUESTION))
        await upload(assistant, TEAM, PathAttachment(example_spec))
        await assistant.ask(AskQuestion(TEAM, QUESTION))  # answered (retrieval only: no Groq key)
        with pytest.raises(SpecNotFoundError):
            await assistant.ask(AskQuestion(TEAM, QUESTION, spec="stripe"))
        with pytest.raises(RateLimitedError):  # the burst of 3 is spent
            await assistant.ask(AskQuestion(TEAM, QUESTION))

        class Broken:
            async def search(self, *args, **kwargs):
                raise RuntimeError("index damaged")

        assistant.retriever = Broken()
        with pytest.raises(RuntimeError):
            await assistant.ask(AskQuestion(Origin("slack", "T1", user="U2"), "how do I delete a customer?"))

        metrics = metrics_of(assistant)
    assert questions(metrics, "refused") == 2
    assert questions(metrics, "answered") == 1
    assert questions(metrics, "rate_limited") == 1
    assert questions(metrics, "error") == 1
    assert questions(metrics, "fallback") == 0
    # Only answers are timed; the refusals and the error are not.
    assert metrics.value("api_assistant_answer_seconds_count", platform="slack") == 1
    assert metrics.value("api_assistant_answer_seconds_bucket", platform="slack", le="+Inf") == 1
    buckets = [float(s.labels["le"]) for s in metrics.samples
               if s.name == "api_assistant_answer_seconds_bucket" and s.labels["le"] != "+Inf"]
    assert buckets == list(LATENCY_BUCKETS) and buckets[0] == 0.01 and buckets[-1] == 60
    assert metrics.value("api_assistant_retrieval_seconds_count") == 1
    assert metrics.value("api_assistant_generation_seconds_count") == 0


async def test_groq_calls_requests_retries_and_fallbacks(tmp_path, embedder, example_spec):
    async with start_fake_groq() as fake:
        settings = Settings(data_dir=tmp_path / "data", groq_api_key="gsk_test_not_real", groq_base_url=fake.base_url,
                            groq_timeout_seconds=2.0, groq_max_retries=1, _env_file=None)
        async with build_assistant(settings, embedder=embedder) as assistant:
            await upload(assistant, TEAM, PathAttachment(example_spec))
            fake.script(ServerError(503, retry_after=0.01), Reply("Refund it with [1]."))
            answer = await assistant.ask(AskQuestion(TEAM, QUESTION))
            assert "Refund it with" in answer.as_markdown()
            fake.script(ServerError(500, retry_after=0.01), ServerError(500, retry_after=0.01))
            await assistant.ask(AskQuestion(TEAM, "how do I delete a customer?"))  # falls back to retrieval
            metrics = metrics_of(assistant)
    assert len(fake.requests) == 4
    assert metrics.value("api_assistant_groq_requests_total", result="5xx") == 3
    # The rerank before each answer goes through the same client: its requests are Groq requests too.
    assert len(fake.rerank_requests) == 2
    assert metrics.value("api_assistant_groq_requests_total", result="2xx") == 1 + 2
    assert metrics.value("api_assistant_reranks_total", outcome="ok") == 2
    assert metrics.value("api_assistant_reranks_total", outcome="fallback") == 0
    assert metrics.value("api_assistant_rerank_seconds_count") == 2
    assert metrics.value("api_assistant_groq_retries_total") == 2
    assert metrics.value("api_assistant_groq_calls_total", outcome="ok") == 1
    assert metrics.value("api_assistant_groq_calls_total", outcome="error") == 1
    assert metrics.value("api_assistant_groq_errors_total", reason="server_error") == 1
    assert questions(metrics, "answered") == 1
    assert questions(metrics, "fallback") == 1
    assert metrics.value("api_assistant_generation_seconds_count") == 2
    assert metrics.value("api_assistant_answer_seconds_count", platform="slack") == 2


async def test_no_groq_series_without_a_key(assistant):
    metrics = metrics_of(assistant)
    assert not any(name.startswith("api_assistant_groq_") for name in metrics.exported_names())
    assert not [s for s in metrics.samples if s.name == "api_assistant_reranks_total"]  # no reranker, no outcomes


async def test_uploads_feedback_caches_and_index_size(assistant, example_spec, tmp_path):
    await upload(assistant, TEAM, PathAttachment(example_spec))
    await upload(assistant, TEAM, PathAttachment(example_spec))  # unchanged
    changed = tmp_path / "bookshop.yaml"
    changed.write_text(example_spec.read_text().replace("version: 1.2.0", "version: 1.3.0"))
    await upload(assistant, TEAM, PathAttachment(changed))  # replace
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do: a broken file
        await upload(assistant, TEAM, BytesAttachment("broken.yaml", b"openapi: [oops"), "broken")
    await upload(assistant, Origin("discord", "G1", user="U1"), PathAttachment(example_spec), "shop")
    assert await assistant.record_feedback(TEAM, "a1", True)
    assert await assistant.record_feedback(TEAM, "a2", False)
    assert await assistant.record_feedback(TEAM, "a3", True)
    assert not await assistant.record_feedback(TEAM, "a1", False)  # one vote per person and answer: not counted
    for _ in range(3):
        await assistant.ask(AskQuestion(TEAM, QUESTION))

    metrics = metrics_of(assistant)
    uploads = {(s.labels["platform"], s.labels["action"], s.labels["outcome"]): s.value
               for s in metrics.samples if s.name == "api_assistant_uploads_total"}
    assert uploads == {("slack", "upload", "ok"): 1, ("slack", "upload", "unchanged"): 1,
                       ("slack", "replace", "ok"): 1, ("slack", "upload", "refused"): 1,
                       ("discord", "upload", "ok"): 1}
    assert metrics.value("api_assistant_feedback_total", platform="slack", vote="up") == 2
    assert metrics.value("api_assistant_feedback_total", platform="slack", vote="down") == 1
    assert metrics.value("api_assistant_cache_hits_total", cache="answers") == 2
    assert metrics.value("api_assistant_cache_misses_total", cache="answers") == 1
    assert metrics.value("api_assistant_cache_misses_total", cache="query_embeddings") == 1
    # The replacement re-used the unchanged documents' embeddings from the disk cache.
    assert metrics.value("api_assistant_cache_hits_total", cache="document_embeddings") >= 8
    assert metrics.value("api_assistant_specs_indexed") == 2
    assert metrics.value("api_assistant_workspaces") == 2
    assert metrics.value("api_assistant_documents_indexed") == 18  # live versions only: not the replaced one
    assert metrics.value("api_assistant_operations_indexed") == 14
    assert metrics.value("api_assistant_queue_max_active", queue="llm") == 4
    assert metrics.value("api_assistant_queue_waiting", queue="llm") == 0

    await assistant.forget(ForgetSpec(TEAM, "bookshop"))
    after = metrics_of(assistant)
    assert after.value("api_assistant_specs_indexed") == 1
    assert after.value("api_assistant_documents_indexed") == 9


async def test_each_assistant_counts_on_its_own(tmp_path, embedder, example_spec):
    first = Settings(data_dir=tmp_path / "a", _env_file=None)
    second = Settings(data_dir=tmp_path / "b", _env_file=None)
    async with build_assistant(first, embedder=embedder) as one, build_assistant(second, embedder=embedder) as two:
        await upload(one, TEAM, PathAttachment(example_spec))
        await one.ask(AskQuestion(TEAM, QUESTION))
        assert questions(metrics_of(one), "answered") == 1
        assert questions(metrics_of(two), "answered") == 0
        assert metrics_of(two).value("api_assistant_specs_indexed") == 0


async def test_scrape_reads_the_disk_off_the_event_loop(assistant, example_spec):
    await upload(assistant, TEAM, PathAttachment(example_spec))
    collector = assistant.telemetry._collector
    real = collector.read_slow
    on_loop: list[bool] = []

    def read_slow():
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real()

    collector.read_slow = read_slow
    text = (await assistant.telemetry.scrape()).decode()
    assert on_loop == [False]
    assert parse(text).value("api_assistant_specs_indexed") == 1


# ---- system readings ------------------------------------------------------------------------------------


def test_directory_bytes_counts_files_and_stops_at_the_bound(tmp_path):
    for folder in range(3):
        (tmp_path / f"d{folder}").mkdir()
        for i in range(10):
            (tmp_path / f"d{folder}" / f"f{i}").write_bytes(b"x" * 5000)
    (tmp_path / "link").symlink_to("/")  # never followed
    used, complete = directory_bytes(tmp_path)
    assert complete and used >= 30 * 5000
    partial, complete = directory_bytes(tmp_path, max_entries=10)
    assert not complete and partial < used
    assert directory_bytes(tmp_path / "missing") == (0, True)


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limits(tmp_path):
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/\n")
    write(tmp_path / "cg", "memory.max", "1073741824\n")
    write(tmp_path / "cg", "cpu.max", "150000 100000\n")
    assert memory_limit_bytes(tmp_path / "cg", proc) == 1 << 30
    assert cpu_limit_cores(tmp_path / "cg", proc) == min(1.5, len(os.sched_getaffinity(0)))
    write(tmp_path / "cg", "memory.max", "max\n")
    write(tmp_path / "cg", "cpu.max", "max 100000\n")
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit_bytes(tmp_path / "cg", proc) == host
    assert cpu_limit_cores(tmp_path / "cg", proc) == len(os.sched_getaffinity(0))


def test_cgroup_v1_limits_of_this_process_group(tmp_path):
    proc = tmp_path / "proc-cgroup"
    proc.write_text("4:memory:/box/a\n2:cpu,cpuacct:/box/a\n0::/\n")
    write(tmp_path / "cg", "memory/memory.limit_in_bytes", "9223372036854771712\n")  # the root: no limit
    write(tmp_path / "cg", "memory/box/a/memory.limit_in_bytes", "536870912\n")
    write(tmp_path / "cg", "cpu/box/a/cpu.cfs_quota_us", "50000\n")
    write(tmp_path / "cg", "cpu/box/a/cpu.cfs_period_us", "100000\n")
    assert memory_limit_bytes(tmp_path / "cg", proc) == 512 << 20
    assert cpu_limit_cores(tmp_path / "cg", proc) == 0.5
    write(tmp_path / "cg", "cpu/box/a/cpu.cfs_quota_us", "-1\n")
    assert cpu_limit_cores(tmp_path / "cg", proc) == len(os.sched_getaffinity(0))


def test_limits_without_any_cgroup(tmp_path):
    missing = tmp_path / "nothing"
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit_bytes(missing, missing) == host
    assert cpu_limit_cores(missing, missing) == len(os.sched_getaffinity(0))
