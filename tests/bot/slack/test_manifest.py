"""The Slack app manifest asks for what the bot uses: its events, scopes and the assistant panel."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import REPO_ROOT

MANIFEST = REPO_ROOT / "slack" / "manifest.yml"

# What the listeners in bot/slack_app/handlers.py receive, and the Web API methods the bot calls need.
EVENTS = {
    "app_mention", "message.channels", "message.groups", "message.im", "message.mpim", "app_uninstalled",
    "tokens_revoked", "assistant_thread_started", "assistant_thread_context_changed",
}
SCOPES = {
    "app_mentions:read", "channels:history", "groups:history", "im:history", "mpim:history", "mpim:read",
    "chat:write", "files:read", "files:write", "reactions:write", "commands", "users:read", "assistant:write",
}


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def test_manifest_subscribes_to_the_events_and_asks_for_the_scopes_the_bot_uses() -> None:
    data = manifest()
    assert set(data["settings"]["event_subscriptions"]["bot_events"]) == EVENTS
    assert set(data["oauth_config"]["scopes"]["bot"]) == SCOPES


def test_manifest_enables_the_assistant_panel() -> None:
    panel = manifest()["features"]["assistant_view"]
    assert panel["assistant_description"].strip()
    assert panel["suggested_prompts"] == []  # the bot sets them per thread, from the workspace's specs
