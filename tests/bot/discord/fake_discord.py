"""A local fake of Discord: the REST v10 routes discord.py calls, a gateway WebSocket, and a CDN path.

The real discord.py client connects to it (see `bot.discord_app.runner.discord_endpoints`). Every REST call is
recorded so tests can assert on payloads; tests push gateway dispatches (MESSAGE_CREATE, INTERACTION_CREATE)
and can make the next matching request fail once (e.g. a 429 with `retry_after`). Messages with files come as
multipart/form-data (`payload_json` plus `files[n]` parts, each named in the body's `attachments`), as Discord
documents it; `Call.files` holds what they carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = 100_000_000_000_000_001
APP_ID = BOT_ID
GUILD_ID = 200_000_000_000_000_002
BOT_ROLE_ID = 200_000_000_000_000_003
CHANNEL_ID = 300_000_000_000_000_003
THREAD_ID = 300_000_000_000_000_004
DM_CHANNEL_ID = 300_000_000_000_000_005
USER_ID = 400_000_000_000_000_004
OTHER_USER_ID = 400_000_000_000_000_005
OTHER_BOT_ID = 500_000_000_000_000_005
TOKEN = "fake-bot-token"
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
THREAD_PERMISSIONS = CREATE_PUBLIC_THREADS | SEND_MESSAGES_IN_THREADS
NOW = "2026-01-01T00:00:00.000000+00:00"


_ROLE = {"position": 0, "color": 0, "hoist": False, "mentionable": False, "flags": 0, "icon": None}


def user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    """A user object."""
    return {
        "id": str(user_id), "username": name, "discriminator": "0", "global_name": None, "avatar": None,
        "bot": bot, "public_flags": 0,
    }


BOT_USER = user(BOT_ID, "api-assistant", bot=True)
HUMAN = user(USER_ID, "ada")
OTHER_HUMAN = user(OTHER_USER_ID, "grace")
OTHER_BOT = user(OTHER_BOT_ID, "other-bot", bot=True)


def member(u: dict[str, Any], roles: list[int] | None = None) -> dict[str, Any]:
    """A guild member object (with or without the user inside)."""
    return {
        "user": u, "roles": [str(r) for r in roles or []], "joined_at": NOW, "deaf": False, "mute": False,
        "flags": 0, "nick": None, "pending": False,
    }


@dataclass
class Call:
    """One REST request the bot made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    status: int = 200
    response: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def has_content(self) -> bool:
        """Whether this call put text on screen (a message, an edit, a follow-up or a response)."""
        if not isinstance(self.body, dict):
            return False
        data = self.body.get("data")
        return "content" in self.body or (isinstance(data, dict) and "content" in data)

    @property
    def files(self) -> list[dict[str, Any]]:
        """The files a multipart/form-data request carried: {"field", "filename", "data"} each."""
        return list(self.body.get("_files") or []) if isinstance(self.body, dict) else []

    @property
    def content(self) -> str:
        """The message content sent ("" when none)."""
        if not isinstance(self.body, dict):
            return ""
        data = self.body.get("data")
        if "content" not in self.body and isinstance(data, dict):
            return data.get("content") or ""
        return self.body.get("content") or ""


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class FakeDiscord:
    """The fake server. `await start()`, use `api_url` / `gateway_url`, `await stop()`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.cdn_files: dict[str, bytes] = {}
        self.cdn_requests: list[str] = []
        self.cdn_delay = 0.0
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.connections = 0
        self.commands: list[dict[str, Any]] = []
        self.threads: dict[str, dict[str, Any]] = {}  # threads the bot started, by id
        self.bot_permissions = 0  # the bot role's own permissions (@everyone may view, send and read history)
        self._failures: list[_Failure] = []
        self._ids = itertools.count(700_000_000_000_000_000)
        self._ws: web.WebSocketResponse | None = None
        self._identified = asyncio.Event()
        self._changed = asyncio.Event()
        self._seq = 0
        self._dispatched: list[tuple[str, dict[str, Any]]] = []
        self._replay: list[tuple[str, dict[str, Any]]] = []
        self._runner: web.AppRunner | None = None
        self._close_on_identify: int | None = None
        self._close_gate: asyncio.Event | None = None
        self.port = 0
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/{tail:.*}", self._cdn)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._app = app
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("GET", re.compile(r"/users/@me"), lambda m, b: BOT_USER),
            ("GET", re.compile(r"/oauth2/applications/@me"), lambda m, b: self.application()),
            ("GET", re.compile(r"/gateway(/bot)?"), lambda m, b: self.gateway_info()),
            ("POST", re.compile(r"/channels/(\d+)/typing"), lambda m, b: None),
            ("POST", re.compile(r"/channels/(\d+)/messages/(\d+)/threads"), self._start_thread),
            ("POST", re.compile(r"/channels/(\d+)/messages"), self._create_message),
            ("PATCH", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._edit_message),
            ("DELETE", re.compile(r"/channels/(\d+)/messages/(\d+)"), lambda m, b: None),
            ("POST", re.compile(r"/interactions/(\d+)/([^/]+)/callback"), self._interaction_callback),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), self._webhook_message),
            ("DELETE", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), lambda m, b: None),
            ("POST", re.compile(r"/webhooks/(\d+)/([^/]+)"), self._webhook_message),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/(\d+)"), self._webhook_message),
            ("DELETE", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/(\d+)"), lambda m, b: None),
            ("PUT", re.compile(r"/applications/(\d+)/commands"), self._put_commands),
            ("GET", re.compile(r"/applications/(\d+)/commands"), lambda m, b: self.commands),
            ("PUT", re.compile(r"/applications/(\d+)/guilds/(\d+)/commands"), self._put_commands),
        ]

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port."""
        self._runner = web.AppRunner(self._app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the gateway and the server."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The REST base, as DISCORD_API_URL."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The gateway, as DISCORD_GATEWAY_URL."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    def cdn_url(self, name: str) -> str:
        """Where an attachment registered with `add_file` is served."""
        return f"{self.base_url}/cdn/attachments/{CHANNEL_ID}/{name}"

    def add_file(self, name: str, data: bytes) -> str:
        """Serve `data` on the fake CDN; returns its URL."""
        self.cdn_files[name] = data
        return self.cdn_url(name)

    # ---- test controls ---------------------------------------------------------------------------------

    def fail_next(
        self, method: str, path_regex: str, *, status: int = 429, retry_after: float = 0.05,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Make the next matching request fail once (a 429 by default, as Discord sends it via Cloudflare)."""
        payload = body or {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        headers = {"Via": "1.1 google", "Retry-After": str(retry_after)} if status == 429 else {}
        self._failures.append(_Failure(method, re.compile(path_regex), status, payload, headers))

    def close_on_identify(self, code: int, gate: asyncio.Event | None = None) -> None:
        """Answer the next IDENTIFY by closing the gateway with `code` (once `gate` is set, when given).

        4014 is what Discord sends when the bot asks for a privileged intent (message content) that is not
        enabled in the Developer Portal; 4004 when the token is invalid.
        """
        self._close_on_identify = code
        self._close_gate = gate

    async def wait_identified(self, timeout: float = 10) -> None:
        """Until the client has sent IDENTIFY."""
        await asyncio.wait_for(self._identified.wait(), timeout)

    async def dispatch(self, event: str, data: dict[str, Any], *, remember: bool = True) -> None:
        """Send a gateway DISPATCH (op 0) to the connected client."""
        if remember:
            self._dispatched.append((event, data))
        await self._send({"op": 0, "t": event, "s": self._next_seq(), "d": data})

    async def reconnect(self, *, replay_last: int = 0) -> None:
        """Ask the client to reconnect (op 7); after it RESUMEs, replay the last `replay_last` dispatches."""
        self._replay = self._dispatched[-replay_last:] if replay_last else []
        self._identified.clear()
        await self._send({"op": 7, "d": None})

    async def wait_for(self, predicate: Callable[[Call], bool], *, count: int = 1, timeout: float = 15) -> list[Call]:
        """Until at least `count` recorded calls match; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [c for c in self.calls if predicate(c)]
            if len(matching) >= count:
                return matching
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = "\n".join(f"  {c.method} {c.path} {c.status} {str(c.body)[:200]}" for c in self.calls)
                raise AssertionError(f"timed out waiting for {count} matching call(s); calls so far:\n{seen}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def sent(self, method: str | None = None, path_regex: str = ".*") -> list[Call]:
        """Successful calls, optionally filtered."""
        pattern = re.compile(path_regex)
        return [
            c for c in self.calls
            if (method is None or c.method == method) and pattern.fullmatch(c.path) and c.status < 300
        ]

    def message_calls(self) -> list[Call]:
        """Every successful call that put text on screen (messages, edits, follow-ups, responses)."""
        return [c for c in self.calls if c.status < 300 and c.has_content]

    def new_id(self) -> int:
        """A fresh snowflake."""
        return next(self._ids)

    # ---- payloads --------------------------------------------------------------------------------------

    def application(self) -> dict[str, Any]:
        """GET /oauth2/applications/@me."""
        return {
            "id": str(APP_ID), "name": "API Assistant", "icon": None, "description": "", "rpc_origins": [],
            "bot_public": True, "bot_require_code_grant": False, "owner": HUMAN, "summary": "",
            "verify_key": "00", "team": None, "flags": 0, "bot": BOT_USER,
            "interactions_endpoint_url": None, "tags": [], "install_params": None,
        }

    def gateway_info(self) -> dict[str, Any]:
        """GET /gateway/bot."""
        return {
            "url": self.gateway_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        }

    def guild(self) -> dict[str, Any]:
        """The GUILD_CREATE payload: one text channel, one thread, @everyone and the bot's managed role."""
        channel = {
            "id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general", "position": 0,
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
            "last_message_id": None, "rate_limit_per_user": 0, "flags": 0,
        }
        thread = {
            "id": str(THREAD_ID), "type": 11, "guild_id": str(GUILD_ID), "name": "api chat",
            "parent_id": str(CHANNEL_ID), "owner_id": str(USER_ID), "last_message_id": None,
            "rate_limit_per_user": 0, "message_count": 0, "member_count": 1, "flags": 0,
            "thread_metadata": {
                "archived": False, "auto_archive_duration": 1440, "archive_timestamp": NOW, "locked": False,
            },
        }
        return {
            "id": str(GUILD_ID), "name": "Test guild", "icon": None, "owner_id": str(USER_ID),
            "roles": [
                {**_ROLE, "id": str(GUILD_ID), "name": "@everyone", "permissions": "68608", "managed": False},
                self.bot_role(self.bot_permissions),
            ],
            "channels": [channel], "threads": [thread],
            "members": [member(BOT_USER, [BOT_ROLE_ID])], "member_count": 2, "large": False,
            "unavailable": False, "features": [], "emojis": [], "stickers": [], "premium_tier": 0,
            "preferred_locale": "en-US", "verification_level": 0, "default_message_notifications": 0,
            "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0, "system_channel_flags": 0,
            "joined_at": NOW, "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "application_id": None,
        }

    def bot_role(self, permissions: int) -> dict[str, Any]:
        """The bot's managed role, with `permissions` (a bit set, as Discord sends it: a string)."""
        return {**_ROLE, "id": str(BOT_ROLE_ID), "name": "API Assistant", "permissions": str(permissions),
                "managed": True, "tags": {"bot_id": str(BOT_ID)}}

    async def set_bot_permissions(self, permissions: int) -> None:
        """A server admin changes the bot role's permissions: GUILD_ROLE_UPDATE, as Discord sends it."""
        self.bot_permissions = permissions
        await self.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(GUILD_ID), "role": self.bot_role(permissions)},
                            remember=False)

    def message(
        self, content: str, *, author: dict[str, Any] = HUMAN, channel_id: int = CHANNEL_ID,
        guild: bool = True, message_id: int | None = None, mentions: list[dict[str, Any]] | None = None,
        mention_roles: list[int] | None = None, attachments: list[dict[str, Any]] | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload from a user."""
        data: dict[str, Any] = {
            "id": str(message_id or self.new_id()), "channel_id": str(channel_id), "author": author,
            "content": content, "timestamp": NOW, "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": mentions or [],
            "mention_roles": [str(r) for r in mention_roles or []], "attachments": attachments or [],
            "embeds": [], "pinned": False, "type": 0, "flags": 0, "components": [],
        }
        if guild:
            data["guild_id"] = str(GUILD_ID)
            data["member"] = {k: v for k, v in member(author).items() if k != "user"}
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {
                "type": 0, "message_id": reply_to["id"], "channel_id": reply_to["channel_id"],
                **({"guild_id": str(GUILD_ID)} if guild else {}),
            }
            data["referenced_message"] = reply_to
        return data

    def mention(self, question: str, **kwargs: Any) -> dict[str, Any]:
        """A message mentioning the bot: `<@bot> question`."""
        return self.message(f"<@{BOT_ID}> {question}", mentions=[BOT_USER], **kwargs)

    def attachment(self, name: str, *, size: int | None = None, served: bytes | None = None) -> dict[str, Any]:
        """An attachment object; `served` registers bytes on the fake CDN."""
        url = self.add_file(name, served) if served is not None else self.cdn_url(name)
        return {
            "id": str(self.new_id()), "filename": name, "size": size if size is not None else len(served or b""),
            "url": url, "proxy_url": url, "content_type": "application/octet-stream",
        }

    def interaction(
        self, subcommand: str, options: dict[str, Any] | None = None, *,
        attachments: list[dict[str, Any]] | None = None, kind: int = 2, focused: str | None = None,
        author: dict[str, Any] = HUMAN, permissions: str = "2147483647",
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE for `/api <subcommand>` (kind 4 with `focused` for autocomplete).

        `permissions` are the member's resolved permissions: the default has them all; "68608" (view channels,
        send messages, read history) is an ordinary member without Manage Server.
        """
        option_types = {"question": 3, "spec": 3, "name": 3, "file": 11, "request": 3, "before": 3, "after": 3,
                        "private": 5, "what": 3}
        sub_options = []
        for name, value in (options or {}).items():
            option: dict[str, Any] = {"name": name, "type": option_types[name], "value": value}
            if name == focused:
                option["focused"] = True
            sub_options.append(option)
        data: dict[str, Any] = {
            "id": "900000000000000009", "name": "api", "type": 1,
            "options": [{"name": subcommand, "type": 1, "options": sub_options}],
        }
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        interaction_id = self.new_id()
        return {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind, "token": f"itoken-{interaction_id}",
            "version": 1, "guild_id": str(GUILD_ID), "channel_id": str(CHANNEL_ID),
            "channel": {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general",
                        "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
            "member": {**member(author), "permissions": permissions}, "data": data, "app_permissions": "2147483647",
            "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }

    def _bot_message(self, channel_id: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        attachments = [
            {"id": str(self.new_id()), "filename": f["filename"], "size": len(f["data"]),
             "url": self.cdn_url(f["filename"]), "proxy_url": self.cdn_url(f["filename"]),
             "content_type": "text/plain; charset=utf-8"}
            for f in body.get("_files") or []
        ]
        data: dict[str, Any] = {
            "id": str(self.new_id()), "channel_id": channel_id, "author": BOT_USER,
            "content": body.get("content") or "", "timestamp": NOW, "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": attachments, "embeds": [],
            "pinned": False, "type": 0, "flags": body.get("flags") or 0, "components": body.get("components") or [],
            **extra,
        }
        reference = body.get("message_reference")
        if reference:
            data["type"] = 19
            data["message_reference"] = {"type": 0, **reference}
        return data

    # ---- REST ------------------------------------------------------------------------------------------

    def _create_message(self, match: re.Match[str], body: Any) -> dict[str, Any]:
        return self._bot_message(match.group(1), body, guild_id=str(GUILD_ID))

    def _edit_message(self, match: re.Match[str], body: Any) -> dict[str, Any]:
        return {**self._bot_message(match.group(1), body), "id": match.group(2), "edited_timestamp": NOW}

    def _webhook_message(self, match: re.Match[str], body: Any) -> dict[str, Any]:
        return self._bot_message(str(CHANNEL_ID), body, webhook_id=str(APP_ID))

    def _interaction_callback(self, match: re.Match[str], body: Any) -> dict[str, Any]:
        flags = (body.get("data") or {}).get("flags") or 0
        return {
            "interaction": {
                "id": match.group(1), "type": 2, "response_message_id": str(self.new_id()),
                "response_message_loading": body.get("type") == 5, "response_message_ephemeral": bool(flags & 64),
            },
            "resource": {"type": body.get("type")},
        }

    async def _start_thread(self, match: re.Match[str], body: Any) -> dict[str, Any]:
        """POST /channels/{channel.id}/messages/{message.id}/threads: a public thread on a message.

        As Discord does it: the thread's id is the message's, the creator owns it, and a THREAD_CREATE (with
        `newly_created`) reaches the gateway too.
        """
        channel_id, message_id = match.group(1), match.group(2)
        thread = {
            "id": message_id, "type": 11, "guild_id": str(GUILD_ID), "parent_id": channel_id,
            "owner_id": str(BOT_ID), "name": body["name"], "last_message_id": None, "rate_limit_per_user": 0,
            "message_count": 0, "member_count": 1, "total_message_sent": 0, "flags": 0,
            "thread_metadata": {
                "archived": False, "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": NOW, "locked": False, "create_timestamp": NOW,
            },
            "member": {"id": message_id, "user_id": str(BOT_ID), "join_timestamp": NOW, "flags": 0},
        }
        self.threads[message_id] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, remember=False)
        return thread

    def click(
        self, message: dict[str, Any], custom_id: str, *, values: list[str] | None = None,
        author: dict[str, Any] = HUMAN,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE (type 3, a message component) for a click on `message`, a message the bot sent.

        `values` makes it a choice in a select menu (component type 3); otherwise it is a button (type 2).
        """
        interaction_id = self.new_id()
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": 3 if values is not None else 2}
        if values is not None:
            data["values"] = values
        channel_id = message["channel_id"]
        thread = self.threads.get(channel_id)
        channel = thread or {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general",
                             "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None}
        return {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": 3, "token": f"itoken-{interaction_id}",
            "version": 1, "guild_id": str(GUILD_ID), "channel_id": channel_id, "channel": channel,
            "member": {**member(author), "permissions": "68608"}, "data": data, "message": message,
            "app_permissions": "2147483647", "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }

    def _put_commands(self, match: re.Match[str], body: Any) -> list[dict[str, Any]]:
        self.commands = [
            {
                "id": str(self.new_id()), "application_id": str(APP_ID), "version": "1", "type": 1,
                "default_member_permissions": None, "dm_permission": True, "nsfw": False, **command,
            }
            for command in body
        ]
        return self.commands

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = await _read_body(request)
        call = Call(request.method, path, dict(request.query), body)
        self.calls.append(call)
        try:
            problem = _form_problem(body)
            if problem is not None:
                call.status = 400
                return _json({"message": "Invalid Form Body", "code": 50035, "errors": problem}, 400)
            for failure in self._failures:
                if failure.method == request.method and failure.pattern.fullmatch(path):
                    self._failures.remove(failure)
                    call.status = failure.status
                    return _json(failure.body, failure.status, failure.headers)
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(path)
                if match and method == request.method:
                    result = handler(match, body)
                    if asyncio.iscoroutine(result):
                        result = await result
                    call.response = result
                    if result is None:
                        call.status = 204
                        return web.Response(status=204)
                    return _json(result)
            call.status = 404
            return _json({"message": "Unknown route (fake)", "code": 0}, 404)
        finally:
            self._changed.set()

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["tail"].rsplit("/", 1)[-1]
        self.cdn_requests.append(request.path)
        self._changed.set()
        if self.cdn_delay:
            await asyncio.sleep(self.cdn_delay)
        if name not in self.cdn_files:
            return web.Response(status=404)
        return web.Response(body=self.cdn_files[name], content_type="application/octet-stream")

    # ---- gateway ---------------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _send(self, payload: dict[str, Any]) -> None:
        assert self._ws is not None and not self._ws.closed, "no gateway connection"
        await self._ws.send_str(json.dumps(payload))

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.connections += 1
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45_000}}))
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            op = payload.get("op")
            if op == 1:
                self.heartbeats += 1
                await ws.send_str(json.dumps({"op": 11}))
            elif op == 2:
                self.identifies.append(payload["d"])
                if self._close_on_identify is not None:
                    if self._close_gate is not None:
                        await self._close_gate.wait()
                    reasons = {4004: b"Authentication failed.", 4014: b"Disallowed intent(s)."}
                    await ws.close(code=self._close_on_identify, message=reasons.get(self._close_on_identify, b""))
                    break
                await self._send({
                    "op": 0, "t": "READY", "s": self._next_seq(), "d": {
                        "v": 10, "user": BOT_USER, "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                        "session_id": "fake-session", "resume_gateway_url": self.gateway_url,
                        "application": {"id": str(APP_ID), "flags": 0}, "private_channels": [],
                        "relationships": [], "shard": [0, 1],
                    },
                })
                await self._send({"op": 0, "t": "GUILD_CREATE", "s": self._next_seq(), "d": self.guild()})
                self._identified.set()
            elif op == 6:
                self.resumes.append(payload["d"])
                await self._send({"op": 0, "t": "RESUMED", "s": self._next_seq(), "d": {}})
                for event, data in self._replay:
                    await self.dispatch(event, data, remember=False)
                self._replay = []
                self._identified.set()
        return ws


async def _read_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    if request.content_type.startswith("multipart/"):
        return await _read_form(request)
    raw = await request.read()
    if request.content_type == "application/json":
        return json.loads(raw)
    return raw.decode("utf-8", "replace")


async def _read_form(request: web.Request) -> dict[str, Any]:
    """A multipart/form-data body as Discord documents it ("Uploading Files"): the JSON body in `payload_json`,
    each file in a `files[n]` part with its filename; returned as the JSON body plus `_files`."""
    payload: dict[str, Any] = {}
    files: list[dict[str, Any]] = []
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert not isinstance(part, type(reader)), "nested multipart"
        data = await part.read()  # type: ignore[union-attr]
        if part.name == "payload_json":
            payload = json.loads(data)
        else:
            files.append({"field": part.name, "filename": part.filename, "data": bytes(data)})
    return {**payload, "_files": files, "_multipart": True}


def _form_problem(body: Any) -> dict[str, Any] | None:
    """What Discord refuses in a multipart body: a part that is not `files[n]`, a file without a filename, or an
    `attachments` entry naming no uploaded file (each `files[n]` is referenced by an attachment with id n)."""
    if not isinstance(body, dict) or not body.get("_multipart"):
        return None
    fields = {}
    for upload in body["_files"]:
        match = re.fullmatch(r"files\[(\d+)\]", upload["field"] or "")
        if match is None or not upload["filename"]:
            return {"files": {"_errors": [{"code": "BASE_TYPE_BAD_FILE", "message": str(upload["field"])}]}}
        fields[match.group(1)] = upload["filename"]
    for attachment in body.get("attachments") or []:
        if "filename" in attachment and fields.get(str(attachment.get("id"))) != attachment["filename"]:
            return {"attachments": {"_errors": [{"code": "ATTACHMENT_NOT_FOUND", "message": str(attachment)}]}}
    return None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only parses JSON when Content-Type is exactly `application/json` (no charset).
    response = web.Response(status=status, body=json.dumps(data).encode(), headers=headers or {})
    response.headers["Content-Type"] = "application/json"
    return response
