"""Prometheus metrics of one `Assistant`, in a `CollectorRegistry` of its own.

Events are counted where they happen (questions by platform and outcome, latencies, uploads, feedback); what
already has a counter elsewhere (cache hits, queue depth, Groq calls, the registry's size, disk, readiness) is
read when Prometheus scrapes, by `AssistantCollector`. Every name starts with `api_assistant_` and ends with its
unit (`_seconds`, `_bytes`, `_total`).

Each Assistant has its own registry: several in one process (tests) never share a counter, and each replica of
the bot serves only its own numbers; Prometheus adds them up across replicas with `sum()`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.health import all_ready
from core.registry import RegistryTotals

if TYPE_CHECKING:
    from core.assistant import Assistant

log = structlog.get_logger(__name__)

PREFIX = "api_assistant"

QUESTION_OUTCOMES = ("answered", "fallback", "refused", "rate_limited", "error")
"""answered: an answer was given (generated, retrieval-only, cached or small talk); fallback: the LLM failed and
the retrieval answer was given instead; refused: a user-facing refusal (nothing indexed, unknown spec, busy,
empty or too long); rate_limited: the user's question rate limit; error: an unexpected exception."""

UPLOAD_OUTCOMES = ("ok", "unchanged", "refused", "error")

RERANK_OUTCOMES = ("ok", "cached", "fallback")
"""ok: the LLM reordered the candidates; cached: an earlier ordering of the same candidates for the same question
was reused; fallback: the call failed, ran out of time or gave no usable order, so the fused order stood."""

LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0
)  # fmt: skip
"""10 ms to 60 s, dense enough that `histogram_quantile` gives P50/P95/P99 within a bucket's width, with edges
at the alert thresholds (10 s, 30 s) so those comparisons are exact."""

MAX_WALK_ENTRIES = 200_000
"""Most files and folders counted under `DATA_DIR` per scrape; beyond it the size is a lower bound (logged)."""

CGROUP_ROOT = Path("/sys/fs/cgroup")
_UNLIMITED_V1 = 1 << 60  # cgroup v1 reports "no limit" as a huge page-aligned number


class Metrics:
    """The counters and histograms the core updates as things happen, plus the process collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.questions = Counter(
            f"{PREFIX}_questions",
            "Questions handled, by platform and outcome (" + ", ".join(QUESTION_OUTCOMES) + ").",
            ["platform", "outcome"],
            registry=registry,
        )
        self.answer_seconds = Histogram(
            f"{PREFIX}_answer_seconds",
            "Time from a question reaching the core to its final answer (answered and fallback outcomes).",
            ["platform"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.retrieval_seconds = Histogram(
            f"{PREFIX}_retrieval_seconds",
            "Time to retrieve a question's evidence (query embedding, hybrid search and the rerank, if on).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.reranks = Counter(
            f"{PREFIX}_reranks",
            "Questions whose candidates the LLM was asked to reorder, by outcome (" + ", ".join(RERANK_OUTCOMES) + ").",
            ["outcome"],
            registry=registry,
        )
        self.rerank_seconds = Histogram(
            f"{PREFIX}_rerank_seconds",
            "Time one rerank took (cache look-up and LLM call; fallbacks included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.generation_seconds = Histogram(
            f"{PREFIX}_generation_seconds",
            "Time the LLM took to stream one answer (retries included), once it had a slot.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.uploads = Counter(
            f"{PREFIX}_uploads",
            "Spec uploads, by platform, action (upload, replace) and outcome (" + ", ".join(UPLOAD_OUTCOMES) + ").",
            ["platform", "action", "outcome"],
            registry=registry,
        )
        self.feedback = Counter(
            f"{PREFIX}_feedback", "Feedback on answers, by platform and vote (up, down).", ["platform", "vote"],
            registry=registry,
        )  # fmt: skip
        # Scheduled backups (BACKUP_INTERVAL_HOURS); a `backup` run from cron is another process, not counted here.
        self.backup_interval = Gauge(
            f"{PREFIX}_backup_interval_seconds",
            "BACKUP_INTERVAL_HOURS in seconds: how often this process writes a backup (0: it does not).",
            registry=registry,
        )
        self.backup_last_success = Gauge(
            f"{PREFIX}_backup_last_success_timestamp_seconds",
            "When the last scheduled backup that succeeded was taken (Unix time; 0: none since this process started).",
            registry=registry,
        )
        self.backup_last_failure = Gauge(
            f"{PREFIX}_backup_last_failure_timestamp_seconds",
            "When the last scheduled backup that failed was attempted (Unix time; 0: none since start).",
            registry=registry,
        )
        self.backup_last_size = Gauge(
            f"{PREFIX}_backup_last_size_bytes", "Size of the archive the last successful scheduled backup wrote.",
            registry=registry,
        )  # fmt: skip
        self.backup_failures = Counter(
            f"{PREFIX}_backup_failures", "Scheduled backups that failed (each is tried again at the next interval).",
            registry=registry,
        )  # fmt: skip
        # CPU seconds, resident memory, open files, Python version and GC counts, from this registry only.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self._collector: AssistantCollector | None = None

    def watch(self, collector: AssistantCollector) -> None:
        """Add the scrape-time collector of the Assistant these metrics belong to."""
        self._collector = collector
        self.registry.register(collector)

    def prepare_platform(self, platform: str) -> None:
        """Create a platform's series at 0, so the first question after start shows up in `rate()`."""
        for outcome in QUESTION_OUTCOMES:
            self.questions.labels(platform, outcome)
        for outcome in UPLOAD_OUTCOMES:
            self.uploads.labels(platform, "upload", outcome)
        for vote in ("up", "down"):
            self.feedback.labels(platform, vote)

    def question(self, platform: str, outcome: str, seconds: float) -> None:
        """Count one question; answers (and fallbacks) also go into the answer-time histogram."""
        self.questions.labels(platform, outcome).inc()
        if outcome in ("answered", "fallback"):
            self.answer_seconds.labels(platform).observe(seconds)

    def prepare_reranks(self) -> None:
        """Create the rerank series at 0 (when a reranker is configured), so the first fallback shows in `rate()`."""
        for outcome in RERANK_OUTCOMES:
            self.reranks.labels(outcome)

    def rerank(self, outcome: str, seconds: float) -> None:
        """Count one rerank and its time."""
        self.reranks.labels(outcome).inc()
        self.rerank_seconds.observe(seconds)

    def upload(self, platform: str, action: str, outcome: str) -> None:
        """Count one upload attempt (the same outcomes as its audit line)."""
        self.uploads.labels(platform, action, outcome).inc()

    def backup_succeeded(self, taken: float, size: int) -> None:
        """A scheduled backup taken at `taken` (Unix time) wrote an archive of `size` bytes."""
        self.backup_last_success.set(taken)
        self.backup_last_size.set(size)

    def backup_failed(self, attempted: float) -> None:
        """A scheduled backup attempted at `attempted` (Unix time) failed."""
        self.backup_failures.inc()
        self.backup_last_failure.set(attempted)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in this registry, computed here (blocking)."""
        return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        """`render()` for the event loop: the slow reads (disk walk, registry counts) run in a worker thread.

        The rest reads counters that the event loop changes, so it is rendered on the loop, never beside it.
        """
        if self._collector is None:
            return self.render()
        collector = self._collector
        slow = await asyncio.to_thread(collector.read_slow)
        with collector.using(slow):
            return self.render()


@dataclass(frozen=True)
class SlowReadings:
    """The scrape-time values that touch the disk: read in a worker thread, then rendered."""

    totals: RegistryTotals
    data_dir_bytes: int
    walk_complete: bool
    filesystem: os.statvfs_result | None
    memory_limit_bytes: int
    cpu_limit_cores: float


class AssistantCollector(Collector):
    """What is read at scrape time: caches, queues, Groq, the registry's size, disk, limits and readiness.

    Readiness comes from the last `Readiness.evaluate()` (the `/metrics` handler runs one before rendering).
    """

    def __init__(self, assistant: Assistant) -> None:
        self._assistant = assistant
        self._walk_truncated_logged = False
        self._readings: SlowReadings | None = None

    def read_slow(self) -> SlowReadings:
        """Read what touches the disk (safe in a worker thread: none of it is event-loop state)."""
        data_dir = self._assistant.settings.data_dir
        used, complete = directory_bytes(data_dir)
        try:
            filesystem: os.statvfs_result | None = os.statvfs(data_dir)
        except OSError:
            filesystem = None
        return SlowReadings(
            self._assistant.registry.totals(), used, complete, filesystem, memory_limit_bytes(), cpu_limit_cores()
        )

    @contextmanager
    def using(self, readings: SlowReadings) -> Iterator[None]:
        """Render with `readings` instead of reading the disk during `collect()`."""
        self._readings = readings
        try:
            yield
        finally:
            self._readings = None

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the families are built at scrape time (the registry then skips the clash check)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Every scrape-time family."""
        readings = self._readings or self.read_slow()
        yield from self._caches()
        yield from self._queues()
        yield from self._groq()
        yield from self._index(readings.totals)
        yield from self._disk(readings)
        yield from self._limits(readings)
        yield from self._readiness()

    def _caches(self) -> Iterator[Metric]:
        assistant = self._assistant
        hits = CounterMetricFamily(
            f"{PREFIX}_cache_hits", "Cache lookups that found a value, by cache.", labels=["cache"]
        )
        misses = CounterMetricFamily(
            f"{PREFIX}_cache_misses", "Cache lookups that found nothing, by cache.", labels=["cache"]
        )
        names = {"answers": "answers", "embeddings": "query_embeddings", "threads": "threads"}
        for namespace, stats in assistant.state.stats().items():
            cache = names.get(namespace, namespace)
            hits.add_metric([cache], stats["hits"])
            misses.add_metric([cache], stats["misses"])
        embedder = assistant.embedder
        hits.add_metric(["document_embeddings"], float(getattr(embedder, "hits", 0)))
        misses.add_metric(["document_embeddings"], float(getattr(embedder, "misses", 0)))
        yield hits
        yield misses

    def _queues(self) -> Iterator[Metric]:
        assistant = self._assistant
        guards = {"llm": assistant.guard, "ingest": assistant.ingest_guard}
        active = GaugeMetricFamily(f"{PREFIX}_queue_active", "Slots in use now, by queue.", labels=["queue"])
        waiting = GaugeMetricFamily(
            f"{PREFIX}_queue_waiting", "Requests waiting for a slot now (queue depth), by queue.", labels=["queue"]
        )
        max_active = GaugeMetricFamily(
            f"{PREFIX}_queue_max_active", "Slots available (LLM_MAX_CONCURRENT, INGEST_MAX_CONCURRENT).",
            labels=["queue"],
        )  # fmt: skip
        max_waiting = GaugeMetricFamily(
            f"{PREFIX}_queue_max_waiting", "Queue capacity (LLM_MAX_QUEUE, INGEST_MAX_QUEUE).", labels=["queue"]
        )
        rejected = CounterMetricFamily(
            f"{PREFIX}_queue_rejected",
            "Requests turned away, by queue: the queue was full, the expected wait too long, or they waited too long.",
            labels=["queue"],
        )
        for name, guard in guards.items():
            active.add_metric([name], guard.active)
            waiting.add_metric([name], guard.queued)
            max_active.add_metric([name], guard.max_concurrent)
            max_waiting.add_metric([name], guard.max_queue)
            rejected.add_metric([name], guard.rejected + guard.timed_out)
        yield from (active, waiting, max_active, max_waiting, rejected)
        yield GaugeMetricFamily(
            f"{PREFIX}_work_in_progress", "Answers, uploads and events being handled now.", assistant.work.active
        )

    def _groq(self) -> Iterator[Metric]:
        from core.generation import GroqGenerator

        generator = self._assistant.generator
        if not isinstance(generator, GroqGenerator):
            return  # generation is off (or a test double): no Groq series at all
        stats = generator.stats
        calls = CounterMetricFamily(
            f"{PREFIX}_groq_calls", "Answers asked of Groq, by outcome (ok, error: failed after retries).",
            labels=["outcome"],
        )  # fmt: skip
        for outcome in ("ok", "error"):
            calls.add_metric([outcome], stats.calls[outcome])
        errors = CounterMetricFamily(
            f"{PREFIX}_groq_errors", "Failed Groq calls, by reason (rate_limited, timeout, server_error, ...).",
            labels=["reason"],
        )  # fmt: skip
        for reason, count in sorted(stats.failures.items()):
            errors.add_metric([reason], count)
        requests = CounterMetricFamily(
            f"{PREFIX}_groq_requests", "HTTP requests sent to Groq, retries included, by result "
            "(2xx, 4xx, 429, 5xx, timeout, connection).",
            labels=["result"],
        )  # fmt: skip
        for result, count in sorted(stats.requests.items()):
            requests.add_metric([result], count)
        yield calls
        yield errors
        yield requests
        yield CounterMetricFamily(f"{PREFIX}_groq_retries", "Requests to Groq that were retries.", stats.retries)

    def _index(self, totals: RegistryTotals) -> Iterator[Metric]:
        yield GaugeMetricFamily(f"{PREFIX}_workspaces", "Workspaces with at least one spec.", totals.workspaces)
        yield GaugeMetricFamily(f"{PREFIX}_specs_indexed", "Specs indexed, all workspaces.", totals.specs)
        yield GaugeMetricFamily(
            f"{PREFIX}_documents_indexed", "Searchable documents of the live spec versions.", totals.documents
        )
        yield GaugeMetricFamily(f"{PREFIX}_operations_indexed", "Operations of the indexed specs.", totals.operations)

    def _disk(self, readings: SlowReadings) -> Iterator[Metric]:
        if not readings.walk_complete and not self._walk_truncated_logged:
            self._walk_truncated_logged = True
            log.warning("data_dir_walk_truncated", entries=MAX_WALK_ENTRIES, bytes_counted=readings.data_dir_bytes)
        yield GaugeMetricFamily(
            f"{PREFIX}_data_dir_bytes",
            "Disk used by files under DATA_DIR (a lower bound if the walk was cut).",
            readings.data_dir_bytes,
        )
        fs = readings.filesystem
        if fs is None:
            return
        yield GaugeMetricFamily(
            f"{PREFIX}_data_filesystem_size_bytes",
            "Size of the file system holding DATA_DIR.",
            fs.f_blocks * fs.f_frsize,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_data_filesystem_free_bytes",
            "Space on DATA_DIR's file system this process may still use.",
            fs.f_bavail * fs.f_frsize,
        )

    def _limits(self, readings: SlowReadings) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_memory_limit_bytes",
            "Memory this process may use: the container's cgroup limit, else the machine's total memory.",
            readings.memory_limit_bytes,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_cpu_limit_cores",
            "CPU cores this process may use: the cgroup quota, else the CPUs it may run on.",
            readings.cpu_limit_cores,
        )

    def _readiness(self) -> Iterator[Metric]:
        verdicts = self._assistant.readiness.last
        yield GaugeMetricFamily(
            f"{PREFIX}_ready", "1 when every component is ready (what GET /ready answers 200 for).",
            1.0 if all_ready(verdicts) else 0.0,
        )  # fmt: skip
        components = GaugeMetricFamily(
            f"{PREFIX}_component_ready", "1 when the component is ready, by component.", labels=["component"]
        )
        for name, verdict in verdicts.items():
            components.add_metric([name], 1.0 if verdict.ready else 0.0)
        yield components


def directory_bytes(root: Path, max_entries: int = MAX_WALK_ENTRIES) -> tuple[int, bool]:
    """Disk used by the files under `root` (allocated blocks, like `du`), and whether the walk finished.

    Symbolic links are not followed; at most `max_entries` entries are visited, so a huge tree costs a bounded
    time per scrape. Unreadable entries are skipped.
    """
    total = 0
    seen = 0
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > max_entries:
                        return total, False
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            folders.append(Path(entry.path))
                        elif entry.is_file(follow_symlinks=False):
                            stat = entry.stat(follow_symlinks=False)
                            blocks = getattr(stat, "st_blocks", None)  # POSIX: 512-byte units actually allocated
                            total += blocks * 512 if blocks is not None else stat.st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total, True


def _cgroup_paths(proc_cgroup: Path = Path("/proc/self/cgroup")) -> dict[str, str]:
    """The cgroup path of this process per controller ("" for cgroup v2's unified hierarchy)."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines[:64]:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2].lstrip("/")
    return paths


def _read_cgroup(root: Path, controller: str, filename: str, paths: dict[str, str]) -> str | None:
    """The first readable `filename` for a controller: this process's own cgroup, then the hierarchy's root."""
    base = root if controller == "" else root / controller
    own = paths.get(controller)
    candidates = ([base / own / filename] if own else []) + [base / filename]
    for candidate in candidates:
        try:
            return candidate.read_text().strip()
        except OSError:
            continue
    return None


def _host_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError):
        return 0


def memory_limit_bytes(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """The cgroup memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`), or the machine's memory."""
    host = _host_memory_bytes()
    paths = _cgroup_paths(proc_cgroup)
    for controller, filename in (("", "memory.max"), ("memory", "memory.limit_in_bytes")):
        value = _read_cgroup(root, controller, filename, paths)
        if value is None or value == "max" or not value.isdigit():
            continue
        limit = int(value)
        if 0 < limit < _UNLIMITED_V1 and (not host or limit < host):
            return limit
    return host


def cpu_limit_cores(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float:
    """The cgroup CPU quota in cores (v2 `cpu.max`, v1 `cpu.cfs_quota_us`), capped by the CPUs we may run on."""
    try:
        cpus = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cpus = float(os.cpu_count() or 1)
    paths = _cgroup_paths(proc_cgroup)
    quota: float | None = None
    v2 = _read_cgroup(root, "", "cpu.max", paths)
    if v2 is not None:
        fields = v2.split()
        if len(fields) == 2 and fields[0] != "max" and fields[0].isdigit() and fields[1].isdigit():
            quota = int(fields[0]) / max(1, int(fields[1]))
    else:
        v1_quota = _read_cgroup(root, "cpu", "cpu.cfs_quota_us", paths)
        v1_period = _read_cgroup(root, "cpu", "cpu.cfs_period_us", paths)
        if v1_quota and v1_period and v1_quota.isdigit() and v1_period.isdigit():  # "-1" means no quota
            quota = int(v1_quota) / max(1, int(v1_period))
    return min(cpus, quota) if quota else cpus
