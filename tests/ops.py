"""Helpers for the health, readiness and metrics tests: run `api-assistant run`'s code, read its endpoints.

    async with running(settings, assistant) as base:       # run_platforms on settings.host:settings.port
        await wait_ready(base)
        metrics = await scrape(base)
        assert metrics.value("api_assistant_questions_total", platform="slack", outcome="answered") == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.run import run_platforms


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def on_free_port(settings: Any) -> Any:
    """`settings` listening on 127.0.0.1 and a free port."""
    return settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})


async def get(url: str) -> tuple[int, str]:
    """(status, body) of `GET url`; status 0 when nothing answers."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientConnectionError:
        return 0, ""


async def wait_for_status(url: str, status: int, timeout: float = 30) -> str:
    """Poll `url` until it answers `status`; returns the body."""
    deadline = time.monotonic() + timeout
    seen = (0, "")
    while time.monotonic() < deadline:
        seen = await get(url)
        if seen[0] == status:
            return seen[1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered {status}; last answer {seen[0]}: {seen[1][:500]}")


async def wait_ready(base: str, timeout: float = 30) -> str:
    """Until `GET /ready` is 200."""
    return await wait_for_status(base + "/ready", 200, timeout)


@contextlib.asynccontextmanager
async def running(settings: Any, assistant: Any) -> AsyncIterator[str]:
    """`run_platforms(settings, assistant)` in a task until the block ends (then a graceful stop)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_platforms(settings, assistant, stop))
    base = f"http://{settings.host}:{settings.port}"
    deadline = time.monotonic() + 30
    while (await get(base + "/health"))[0] != 200:
        if task.done():
            task.result()  # raises what stopped it
            raise AssertionError("run_platforms returned before serving /health")
        assert time.monotonic() < deadline, "/health never answered"
        await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 30)
        finally:
            if not task.done():
                task.cancel()


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One parsed `/metrics` answer."""

    text: str
    families: dict[str, str]  # family name -> type ("counter", "gauge", "histogram", ...)
    samples: list[Sample]

    def values(self, name: str, **labels: str) -> list[float]:
        return [s.value for s in self.samples if s.name == name and labels.items() <= s.labels.items()]

    def value(self, name: str, **labels: str) -> float:
        """The one sample matching; 0.0 when there is none (a labelled series not created yet)."""
        found = self.values(name, **labels)
        assert len(found) <= 1, f"{name} {labels} matches {len(found)} samples"
        return found[0] if found else 0.0

    def exported_names(self) -> set[str]:
        """Every series name PromQL can use: counters as `_total`, histograms as `_bucket`/`_sum`/`_count`."""
        names: set[str] = set()
        for family, kind in self.families.items():
            if kind == "counter":
                names.update({family + "_total", family + "_created"})
            elif kind == "histogram":
                names.update(family + suffix for suffix in ("_bucket", "_sum", "_count", "_created"))
            else:
                names.add(family)
        names.update(s.name for s in self.samples)
        return names


def parse(text: str) -> Scrape:
    families: dict[str, str] = {}
    samples: list[Sample] = []
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        samples.extend(Sample(s.name, dict(s.labels), float(s.value)) for s in family.samples)
    return Scrape(text, families, samples)


async def scrape(base: str) -> Scrape:
    """`GET /metrics`, checked for status and content type, parsed with prometheus-client's own parser."""
    async with aiohttp.ClientSession() as session, session.get(base + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await response.text())


async def wait_for_metric(base: str, name: str, expected: float, timeout: float = 15, **labels: str) -> Scrape:
    """Scrape until `name{labels}` equals `expected` (counters move just after the reply is posted)."""
    deadline = time.monotonic() + timeout
    while True:
        metrics = await scrape(base)
        if metrics.value(name, **labels) == expected:
            return metrics
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} is {metrics.value(name, **labels)}, expected {expected}")
        await asyncio.sleep(0.05)
