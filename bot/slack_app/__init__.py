"""The Slack adapter: Bolt for Python (`AsyncApp`) in Socket Mode or over HTTP, on top of `core`.

`translate` turns Slack payloads into core requests, `render` turns core answers into Block Kit,
`handlers` holds the listeners, `app` wires the SDK and `runner` serves it.
"""

from bot.slack_app.app import build_slack_app
from bot.slack_app.runner import serve_slack

__all__ = ["build_slack_app", "serve_slack"]
