"""What a user can ask the core to do (actions): one frozen dataclass per request.

Each request carries an `Origin` (platform, workspace, channel, user, thread, event id) so the core can
scope data, rate-limit and de-duplicate without knowing which platform it came from, and a request id: a
short random id for one user action, which adapters bind to every log line of that action and show in the
generic error reply, so a user's report ("ref ab12cd34") leads to the log lines.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core import messages
from core.errors import FileTooLargeError


def new_request_id() -> str:
    """A fresh request id: 8 hex characters, short enough to read out, random enough not to repeat in a log."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class Origin:
    """Where a request came from."""

    platform: str  # "slack" | "discord" | "console" | "cli"
    workspace: str  # Slack team id, Discord guild id (or DM user), or "local"
    channel: str = ""
    user: str = ""
    thread: str = ""  # conversation thread for follow-ups ("" when none)
    event_id: str = ""  # the platform's id for this delivery, for de-duplication
    user_name: str = ""  # how the platform displays the user (for "uploaded by"), when the adapter knows it
    is_admin: bool = False  # a workspace admin (Slack owner/admin, Discord Manage Server, the local user)
    parent_channel: str = ""  # the channel a Discord thread belongs to ("" when `channel` is not a thread)
    # One per user action (adapters build one Origin per event or command); not part of what an origin *is*.
    request_id: str = field(default_factory=new_request_id, compare=False)

    @property
    def scope(self) -> str:
        """The storage scope: platform plus workspace, so ids from different platforms never collide."""
        return f"{self.platform_family}:{self.workspace}"

    @property
    def channel_key(self) -> str:
        """The channel whose settings apply (default spec, private specs): a thread shares its parent's."""
        return self.parent_channel or self.channel

    @property
    def is_local(self) -> bool:
        """The machine's own operator (terminal chat, CLI, evaluation runs), not a chat platform user."""
        return self.platform in {"console", "cli", "eval"}

    @property
    def platform_family(self) -> str:
        """Console and CLI share one local workspace."""
        return "local" if self.platform in {"console", "cli"} else self.platform


class Attachment(Protocol):
    """A file the user sent, not yet downloaded: check name and size before calling `read`."""

    @property
    def filename(self) -> str:
        """The file's name as the user uploaded it."""
        ...

    @property
    def size(self) -> int | None:
        """The size the platform declared, if any (not trusted on its own)."""
        ...

    async def read(self, max_bytes: int) -> bytes:
        """Download the content, raising `FileTooLargeError` as soon as it exceeds `max_bytes`."""
        ...


@dataclass(frozen=True)
class BytesAttachment:
    """An attachment whose content is already in memory."""

    filename: str
    data: bytes

    @property
    def size(self) -> int:
        """The content's length."""
        return len(self.data)

    async def read(self, max_bytes: int) -> bytes:
        """The content, if within the limit."""
        if len(self.data) > max_bytes:
            raise FileTooLargeError(messages.file_too_large(self.filename, len(self.data), max_bytes))
        return self.data


@dataclass(frozen=True)
class PathAttachment:
    """A local file (the terminal adapter and the CLI)."""

    path: Path

    @property
    def filename(self) -> str:
        """The file's name."""
        return self.path.name

    @property
    def size(self) -> int | None:
        """The file's size on disk."""
        return self.path.stat().st_size

    async def read(self, max_bytes: int) -> bytes:
        """Read at most `max_bytes` (plus one, to detect files over the limit)."""
        with self.path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise FileTooLargeError(messages.file_too_large(self.filename, len(data), max_bytes))
        return data


@dataclass(frozen=True)
class AskQuestion:
    """Ask a question, optionally about one named spec."""

    origin: Origin
    question: str
    spec: str | None = None


@dataclass(frozen=True)
class UploadSpec:
    """Index a spec file into the origin's workspace, optionally under a chosen name.

    `private`: only the origin's channel (or DM) will see it; a re-upload keeps the visibility the spec has.
    """

    origin: Origin
    attachment: Attachment
    name: str | None = None
    private: bool = False


@dataclass(frozen=True)
class ListSpecs:
    """List the workspace's specs."""

    origin: Origin


@dataclass(frozen=True)
class UseSpec:
    """Set the channel's default spec (`spec`), clear it (`clear`), or, with neither, show it."""

    origin: Origin
    spec: str | None = None
    clear: bool = False


@dataclass(frozen=True)
class SetVisibility:
    """Make a spec private to the origin's channel, or share it with the whole workspace again."""

    origin: Origin
    name: str
    private: bool


@dataclass(frozen=True)
class ForgetSpec:
    """Remove a spec from the workspace."""

    origin: Origin
    name: str


@dataclass(frozen=True)
class PurgeWorkspace:
    """Remove everything a workspace has stored: the app was uninstalled, or the bot removed from a server.

    `origin` names the platform and workspace (its user is empty when the platform itself asked);
    `reason` says what happened ("app_uninstalled", "tokens_revoked", "guild_remove", ...).
    """

    origin: Origin
    reason: str


@dataclass(frozen=True)
class DiffSpec:
    """Compare two kept versions of a spec; by default the current one against the one before it.

    `before` / `after` name versions: a number (`3`, `v3`) or the spec's own version string.
    """

    origin: Origin
    name: str
    before: str | None = None
    after: str | None = None


@dataclass(frozen=True)
class CheckRequest:
    """Check a pasted request or response (curl, HTTP, or a body) against a spec (`spec` None: any spec here)."""

    origin: Origin
    text: str
    spec: str | None = None


@dataclass(frozen=True)
class ShowSnippet:
    """Show an earlier answer's snippet in another language (a button or menu under the answer).

    `spec` and `operation_ref` come from the answer's `core.snippet_choice.SnippetTarget`; `language` is a word
    for a snippet language ("python", "node", ...).
    """

    origin: Origin
    spec: str
    operation_ref: str
    language: str


@dataclass(frozen=True)
class DrawDiagram:
    """Draw a diagram of a spec: `what` is "auth", "overview" or a schema's name."""

    origin: Origin
    name: str
    what: str = "overview"


@dataclass(frozen=True)
class LintSpec:
    """Make the quality report of a spec."""

    origin: Origin
    name: str
