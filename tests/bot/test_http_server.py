"""The process's HTTP server on its own: webhooks come and go while it runs, and a busy port is a clear error."""

import socket

import aiohttp
import pytest
from aiohttp import web

from bot.http_server import HttpServer
from core.errors import ConfigError
from tests.ops import get, parse


async def test_webhooks_added_and_removed_while_serving(assistant):
    server = HttpServer(assistant)
    async with server.serving("127.0.0.1", 0):
        base = f"http://127.0.0.1:{server.port}"
        assert server.listening
        async with aiohttp.ClientSession() as session:
            async with session.post(base + "/hook", data="x") as response:
                assert response.status == 404

            async def hook(request: web.Request) -> web.Response:
                return web.Response(text="got " + await request.text())

            server.add_webhook("/hook", hook)
            async with session.post(base + "/hook", data="x") as response:
                assert response.status == 200 and await response.text() == "got x"
            server.remove_webhook("/hook")
            async with session.post(base + "/hook", data="x") as response:
                assert response.status == 404
        assert await get(base + "/health") == (200, "ok")
        status, body = await get(base + "/metrics")
        assert status == 200 and parse(body).value("api_assistant_ready") == 1
    assert not server.listening
    assert await get(base + "/health") == (0, "")


async def test_a_busy_port_is_a_configuration_error(assistant):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}.*set PORT"):
            await HttpServer(assistant).start("127.0.0.1", port)
