"""The Discord adapter: mentions, replies, DMs and the `/api` slash commands, on top of `core.assistant.Assistant`.

Modules: `translate` (Discord payloads -> core requests), `render` (core answers -> Discord markdown),
`attachments` (lazy CDN downloads), `replies` (sending and editing message series), `handlers` (the flows and
the one place errors become replies), `commands` (the `/api` group), `client` and `runner` (wiring the SDK).
"""
