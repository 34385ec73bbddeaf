"""Readiness: whether this process can do its work right now, component by component.

Each part the process depends on registers a check under a name: the core registers the embedding model, the
vector store, Redis (when configured) and whether it is still taking work; each platform adapter registers its
connection ("slack", "discord"). `GET /ready` and the `api_assistant_ready` metric evaluate them all.

Checks are plain callables returning a `Verdict` (or an awaitable of one), so the core never sees a platform
type: an adapter closes over its own client. A check that raises or takes longer than `CHECK_TIMEOUT_SECONDS`
counts as not ready, with the reason named.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
"""How long one check may take before it counts as failed (a probe must answer well within its own timeout)."""


@dataclass(frozen=True)
class Verdict:
    """One component's state: ready or not, and a short reason for operators (never a secret)."""

    ready: bool
    detail: str = "ok"


READY = Verdict(True)


def not_ready(detail: str) -> Verdict:
    """A failed verdict naming what is wrong, e.g. `not_ready("no answer from Redis")`."""
    return Verdict(False, detail)


Check = Callable[[], Verdict | Awaitable[Verdict]]


class Readiness:
    """The components this process needs and how to check each; the last evaluation is kept for metrics."""

    def __init__(self, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._checks: dict[str, Check] = {}
        self.last: dict[str, Verdict] = {}

    @property
    def components(self) -> list[str]:
        """The registered component names, in registration order."""
        return list(self._checks)

    def register(self, component: str, check: Check) -> None:
        """Check `component` with `check` from now on (replacing any earlier check of that name)."""
        self._checks[component] = check

    def expect(self, component: str) -> None:
        """Declare a component that will register its check later; until then it is "starting" (not ready)."""
        self.register(component, lambda: not_ready("starting"))

    def set(self, component: str, verdict: Verdict) -> None:
        """Report a fixed state, e.g. `not_ready("stopped")` once an adapter has disconnected."""
        self.register(component, lambda: verdict)

    async def evaluate(self) -> dict[str, Verdict]:
        """Run every check at once (each bounded by `timeout`); returns and remembers the verdicts."""
        names = list(self._checks)
        verdicts = await asyncio.gather(*(self._run(name, self._checks[name]) for name in names))
        self.last = dict(zip(names, verdicts, strict=True))
        failing = {name: v.detail for name, v in self.last.items() if not v.ready}
        if failing:
            log.debug("not_ready", components=failing)
        return self.last

    async def _run(self, name: str, check: Check) -> Verdict:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await asyncio.wait_for(result, self.timeout)
            return result
        except TimeoutError:
            return not_ready(f"no answer within {self.timeout:g} s")
        except Exception as exc:  # a failing dependency, reported by its exception class only (no messages)
            log.debug("readiness_check_failed", component=name, error=type(exc).__name__)
            return not_ready(f"check failed: {type(exc).__name__}")


class RememberedCheck:
    """A check of something that, once it has passed, stays passed (a platform accepting the bot's token).

    Until then `probe` is asked on each readiness check; after a failure its verdict stands for `retry_seconds`,
    so frequent probes do not turn into a stream of calls to the platform (or of DNS lookups, which cannot be
    cancelled and would hold up the process's exit).
    """

    def __init__(self, probe: Callable[[], Awaitable[Verdict]], retry_seconds: float, unanswered: str) -> None:
        self._probe = probe
        self._retry_seconds = retry_seconds
        self._unanswered = unanswered
        self._passed = False
        self._retry_at = 0.0
        self._failure = not_ready(unanswered)

    async def __call__(self) -> Verdict:
        """READY once `probe` has passed; else its last failure, or a new answer once `retry_seconds` have passed."""
        if self._passed:
            return READY
        if time.monotonic() < self._retry_at:
            return self._failure
        self._retry_at = time.monotonic() + self._retry_seconds
        self._failure = not_ready(self._unanswered)  # stands if this check is cut off by its timeout
        verdict = await self._probe()
        self._passed = verdict.ready
        if not verdict.ready:
            self._failure = verdict
        return verdict


def all_ready(verdicts: dict[str, Verdict]) -> bool:
    """Whether every component is ready (and at least one is registered)."""
    return bool(verdicts) and all(v.ready for v in verdicts.values())
