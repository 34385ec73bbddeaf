"""DOT to PNG with Graphviz's `dot`, bounded: the source's size, the time it may take, the image's size.

The `graphviz` binding's own `pipe()` has no timeout, so `dot` runs here as a subprocess (in a thread) that is
killed when it overruns. A missing `dot` (Debian's `graphviz` package not installed) is a clear error, not a crash.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import structlog

from core import messages
from core.errors import DiagramError

log = structlog.get_logger(__name__)

MAX_DOT_BYTES = 512 * 1024  # the builders stay far below this; a guard, not a target
MAX_PNG_BYTES = 8 * 1024 * 1024  # Slack and Discord both take this much
RENDER_TIMEOUT_SECONDS = 20.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# No side longer than this many inches at the graph's dpi (110): about 3,300 pixels.
MAX_INCHES = "30,30"


def dot_binary() -> str | None:
    """Where `dot` is, if installed."""
    return shutil.which("dot")


async def render_png(dot: str, timeout: float = RENDER_TIMEOUT_SECONDS) -> bytes:
    """The PNG of `dot` (its `layout` attribute picks the engine).

    `DiagramError` when it is too large, `dot` is missing, fails or runs out of time.
    """
    source = dot.encode("utf-8")
    if len(source) > MAX_DOT_BYTES:
        raise DiagramError(messages.diagram_too_large())
    binary = dot_binary()
    if binary is None:
        log.error("diagram_renderer_missing", tool="dot")
        raise DiagramError(messages.diagram_renderer_missing())
    try:
        done = await asyncio.to_thread(_run_dot, binary, source, timeout)
    except subprocess.TimeoutExpired:
        log.warning("diagram_render_timeout", seconds=timeout, dot_bytes=len(source))
        raise DiagramError(messages.diagram_timeout()) from None
    png = done.stdout
    if done.returncode != 0 or not png.startswith(PNG_SIGNATURE):
        error = done.stderr.decode(errors="replace")[:200]
        log.warning("diagram_render_failed", returncode=done.returncode, error=error)
        raise DiagramError(messages.diagram_failed())
    if len(png) > MAX_PNG_BYTES:
        raise DiagramError(messages.diagram_too_large())
    return png


def _run_dot(binary: str, source: bytes, timeout: float) -> subprocess.CompletedProcess[bytes]:
    # `subprocess.run` kills `dot` when the timeout passes. asyncio's own subprocesses are not used on purpose: on
    # Python 3.11, one whose start is cancelled when every task is (shutdown, `asyncio.run` ending) waits forever
    # for pipes that were never connected, and the process never exits. A cancelled caller leaves this thread to
    # finish within `timeout`.
    return subprocess.run(
        [binary, "-Tpng", f"-Gsize={MAX_INCHES}"], input=source, capture_output=True, timeout=timeout, check=False
    )
