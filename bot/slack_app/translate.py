"""Slack payloads -> what the core understands. Pure functions: no network, no SDK calls.

Decides, for each event, whether it is a question, an upload or something to ignore (and why), builds the
`Origin` (platform "slack", workspace = team id, thread = the Slack thread replied in, event id for
de-duplication), turns Slack's message markup back into plain text, and reads `/api` commands with the
catalogue's typed syntax.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.actions import Origin
from core.commands.catalogue import SLACK, Invocation, command, find
from core.commands.syntax import TypedSyntax, split_command
from core.mentions import addresses_others

PLATFORM = SLACK
SYNTAX = TypedSyntax("/api ")
HANDLED_MESSAGE_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
_ANGLE = re.compile(r"<([^<>]*)>")
FOR_OTHERS = "mentions_others"  # an unmentioned message in a bot thread that mentions other people


class Kind(StrEnum):
    """What an event asks of the bot."""

    QUESTION = "question"
    UPLOAD = "upload"
    IGNORE = "ignore"


@dataclass(frozen=True)
class SlackFile:
    """The parts of a Slack file object the adapter needs (from the event, or from `files.info`)."""

    id: str
    name: str
    size: int | None
    url: str

    @property
    def complete(self) -> bool:
        """Whether name and URL are known (Slack Connect files arrive with only an id)."""
        return bool(self.name and self.url)


@dataclass(frozen=True)
class Incoming:
    """One classified event."""

    kind: Kind
    origin: Origin
    reason: str = ""  # why it is ignored (for the log)
    question: str = ""
    reply_thread: str | None = None  # thread_ts to reply in; None = top level (DMs)
    message_ts: str = ""
    files: tuple[SlackFile, ...] = ()
    addressed: bool = False  # mentioned, or in a DM: the user clearly talked to the bot
    channel_type: str = ""  # Slack's: "channel", "group" (private channel), "im", "mpim"
    extra: dict[str, Any] = field(default_factory=dict)


def slack_to_plain(text: str, bot_user_id: str | None = None) -> str:
    """Slack message markup -> plain text: drop the bot's mention, unwrap links and mentions, unescape."""

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if bot_user_id and target == f"@{bot_user_id}":
            return ""
        if target.startswith(("@", "#")):
            return (label and target[0] + label.lstrip("@#")) or target
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        return label or target

    plain = _ANGLE.sub(replace, text or "")
    plain = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", plain).strip()


def mentions(text: str, bot_user_id: str | None) -> bool:
    """Whether message text mentions the bot."""
    return bool(bot_user_id) and re.search(rf"<@{re.escape(bot_user_id or '')}(?:\|[^<>]*)?>", text or "") is not None


def files_of(event: Mapping[str, Any]) -> tuple[SlackFile, ...]:
    """The files attached to a message event."""
    return tuple(file_from_payload(f) for f in event.get("files") or () if isinstance(f, Mapping))


def file_from_payload(payload: Mapping[str, Any]) -> SlackFile:
    """A Slack file object (event payload or `files.info`) -> `SlackFile`."""
    size = payload.get("size")
    return SlackFile(
        id=str(payload.get("id") or ""),
        name=str(payload.get("name") or payload.get("title") or ""),
        size=size if isinstance(size, int) and size >= 0 else None,
        url=str(payload.get("url_private_download") or payload.get("url_private") or ""),
    )


def team_of(body: Mapping[str, Any]) -> str:
    """The workspace a payload belongs to (events, commands and interactions spell it differently)."""
    team = body.get("team_id") or body.get("team") or (body.get("event") or {}).get("team") or ""
    if isinstance(team, Mapping):
        team = team.get("id") or ""
    return str(team)


def _origin(body: Mapping[str, Any], event: Mapping[str, Any], thread: str) -> Origin:
    return Origin(platform=PLATFORM, workspace=team_of(body), channel=str(event.get("channel") or ""),
                  user=str(event.get("user") or ""), thread=thread, event_id=str(body.get("event_id") or ""))


def _from_bot(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message" or (
        bool(bot_user_id) and event.get("user") == bot_user_id
    )


def classify_mention(body: Mapping[str, Any], bot_user_id: str | None) -> Incoming:
    """An `app_mention` event: a question in a channel, answered in its thread."""
    event = body.get("event") or {}
    ts = str(event.get("ts") or "")
    thread = str(event.get("thread_ts") or ts)
    origin = _origin(body, event, thread)
    if _from_bot(event, bot_user_id):
        return Incoming(Kind.IGNORE, origin, "from_bot")
    if not event.get("user"):
        return Incoming(Kind.IGNORE, origin, "no_user")
    if str(event.get("channel") or "").startswith("D"):
        return Incoming(Kind.IGNORE, origin, "dm_handled_as_message")
    if event.get("files") or event.get("subtype") == "file_share":
        return Incoming(Kind.IGNORE, origin, "upload_handled_as_message")
    return Incoming(Kind.QUESTION, origin, question=slack_to_plain(event.get("text", ""), bot_user_id),
                    reply_thread=thread, message_ts=ts, addressed=True)


def classify_message(body: Mapping[str, Any], bot_user_id: str | None, in_bot_thread: bool = False) -> Incoming:
    """A `message` event: DMs, uploads, group DM mentions, and follow-ups in threads the bot takes part in.

    Whether the bot takes part in the thread is the core's to say (`Assistant.knows_thread`): a message
    ignored as "not_addressed" in a thread is classified again once the core knows. There, a message that
    mentions someone else (a person, a user group, @here) and not the bot is between people: ignored as
    `FOR_OTHERS`. One that mentions the bot arrives as an `app_mention` and is answered from that, except in a
    group DM (`message.mpim`), where it is a question answered in its thread as a channel mention is (Slack
    may send it as an `app_mention` too: the handler answers a message once, whichever comes first).
    """
    event = body.get("event") or {}
    ts = str(event.get("ts") or "")
    channel = str(event.get("channel") or "")
    is_dm = event.get("channel_type") == "im"
    is_group_dm = event.get("channel_type") == "mpim"
    thread_ts = str(event.get("thread_ts") or "")
    origin = _origin(body, event, thread_ts or (channel if is_dm else ts))
    subtype = event.get("subtype")
    if subtype not in HANDLED_MESSAGE_SUBTYPES:
        return Incoming(Kind.IGNORE, origin, f"subtype:{subtype}")
    if _from_bot(event, bot_user_id):
        return Incoming(Kind.IGNORE, origin, "from_bot")
    if not event.get("user"):
        return Incoming(Kind.IGNORE, origin, "no_user")
    mentioned = mentions(event.get("text", ""), bot_user_id)
    files = files_of(event)
    if files:
        if not (is_dm or mentioned):
            # Uploads need intent: a file shared in a channel without mentioning the bot is for the people there.
            return Incoming(Kind.IGNORE, origin, "upload_not_addressed")
        return Incoming(Kind.UPLOAD, origin, reply_thread=thread_ts or (None if is_dm else ts), message_ts=ts,
                        files=files, addressed=True, question=slack_to_plain(event.get("text", ""), bot_user_id),
                        channel_type=str(event.get("channel_type") or ""))
    question = slack_to_plain(event.get("text", ""), bot_user_id)
    if is_dm:
        return Incoming(Kind.QUESTION, origin, question=question, reply_thread=thread_ts or None,
                        message_ts=ts, addressed=True)
    if mentioned and is_group_dm:
        return Incoming(Kind.QUESTION, origin, question=question, reply_thread=thread_ts or ts, message_ts=ts,
                        addressed=True)
    if mentioned:
        return Incoming(Kind.IGNORE, origin, "mention_handled_as_app_mention")
    if thread_ts and in_bot_thread:
        if addresses_others(event.get("text", ""), {bot_user_id} if bot_user_id else set()):
            return Incoming(Kind.IGNORE, origin, FOR_OTHERS)
        return Incoming(Kind.QUESTION, origin, question=question, reply_thread=thread_ts, message_ts=ts)
    return Incoming(Kind.IGNORE, origin, "not_addressed")


def command_origin(body: Mapping[str, Any]) -> Origin:
    """The origin of a slash command (the trigger id tells re-deliveries apart)."""
    return Origin(platform=PLATFORM, workspace=team_of(body), channel=str(body.get("channel_id") or ""),
                  user=str(body.get("user_id") or ""), event_id=str(body.get("trigger_id") or ""))


def parse_command(body: Mapping[str, Any], origin: Origin | None = None) -> Invocation:
    """Read `/api SUBCOMMAND ARGS` with the catalogue: no subcommand is `help`, any other first word a question.

    Raises `CommandUsageError` when a subcommand's arguments cannot be read.
    """
    text = slack_to_plain(str(body.get("text") or ""))
    origin = origin or command_origin(body)
    if not text:
        return Invocation(command("help"), origin)
    first, rest = split_command(text)
    named = find(first, PLATFORM)
    if named is None:
        return Invocation(command("ask"), origin, {"question": text})
    return Invocation(named, origin, SYNTAX.parse(named, rest))


def action_origin(body: Mapping[str, Any]) -> Origin:
    """The origin of a button click."""
    user = body.get("user") or {}
    channel = body.get("channel") or {}
    message = body.get("message") or {}
    return Origin(platform=PLATFORM, workspace=team_of(body), channel=str(channel.get("id") or ""),
                  user=str(user.get("id") or ""), thread=str(message.get("thread_ts") or message.get("ts") or ""))
