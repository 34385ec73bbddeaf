"""The process's one HTTP server on `HOST:PORT`, in every mode: health, readiness, metrics, and webhooks.

- `GET /health` (and `/healthz`, its old name): liveness, 200 while the process runs.
- `GET /ready`: 200 when every readiness component is ready, else 503; the JSON body names each component's
  state, e.g. `{"ready": false, "not_ready": {"slack": "not connected"}, "components": {...}}`.
- `GET /metrics`: this process's Prometheus metrics (text exposition format).
- Webhooks that platform adapters add while running (Slack's HTTP mode adds `POST /slack/events`), so one
  listener serves everything and a load balancer needs one port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from aiohttp import web

from core.assistant import Assistant
from core.errors import ConfigError
from core.health import all_ready

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEALTH_PATH = "/health"
HEALTH_ALIAS = "/healthz"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text exposition format, which `generate_latest` writes and every Prometheus 2.x reads."""


class HttpServer:
    """Serves `assistant`'s health, readiness and metrics, plus webhooks added with `add_webhook`."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self._webhooks: dict[str, Handler] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application()
        self.app.router.add_get(HEALTH_PATH, self._health)
        self.app.router.add_get(HEALTH_ALIAS, self._health)
        self.app.router.add_get(READY_PATH, self._ready)
        self.app.router.add_get(METRICS_PATH, self._metrics)
        # Webhooks come and go while the server runs; aiohttp's router is frozen once it starts, so one route
        # takes every POST and looks the path up.
        self.app.router.add_post("/{path:.*}", self._webhook)

    @property
    def listening(self) -> bool:
        """Whether the server has a bound socket."""
        return self._runner is not None and bool(self._runner.sites)

    def add_webhook(self, path: str, handler: Handler) -> None:
        """Serve `POST path` with `handler` from now on."""
        self._webhooks[path] = handler

    def remove_webhook(self, path: str) -> None:
        """Stop serving `POST path` (it answers 404 again)."""
        self._webhooks.pop(path, None)

    async def start(self, host: str, port: int) -> int:
        """Listen on `host:port` (0: any free port); returns the bound port. `ConfigError` if it can't."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"Cannot listen on HOST:PORT {host}:{port} ({exc.strerror or type(exc).__name__}); "
                "set PORT to a free port."
            ) from None
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else port
        log.info("http_server_started", host=host, port=self.port)
        return self.port

    async def close(self) -> None:
        """Stop listening and close open connections (idempotent)."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            log.info("http_server_stopped")

    @asynccontextmanager
    async def serving(self, host: str, port: int) -> AsyncIterator[HttpServer]:
        """`async with server.serving(host, port):` listen for the duration of the block."""
        await self.start(host, port)
        try:
            yield self
        finally:
            await self.close()

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, _: web.Request) -> web.Response:
        verdicts = await self.assistant.readiness.evaluate()
        ready = all_ready(verdicts)
        body = {
            "ready": ready,
            "not_ready": {name: v.detail for name, v in verdicts.items() if not v.ready},
            "components": {name: {"ready": v.ready, "detail": v.detail} for name, v in verdicts.items()},
        }
        return web.json_response(body, status=200 if ready else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        await self.assistant.readiness.evaluate()  # so api_assistant_ready is current
        body = await self.assistant.telemetry.scrape()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        handler = self._webhooks.get(request.path)
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request)
