"""Discord payloads -> core requests: who is talking to the bot, in which conversation, asking what.

Nothing here sends anything. Platform types stop at this module: the core only ever sees `Origin` and the
request dataclasses built from it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import aiohttp
import discord

from bot.discord_app.attachments import DiscordAttachment
from core.actions import Origin
from core.downloads import TrustedOrigins
from core.mentions import addresses_others

PLATFORM = "discord"
_UPLOAD_WORDS = {"upload", "index", "add", "spec", "name", "as", "called"}
PRIVATE_WORD = "--private"  # `@bot stripe --private` with a file: visible only in this channel
_SPEC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def workspace_id(guild_id: int | None, user_id: int) -> str:
    """A guild's workspace is its id; a DM's is private to the user."""
    return str(guild_id) if guild_id is not None else f"dm-{user_id}"


def guild_origin(guild_id: int) -> Origin:
    """The workspace of a whole server, for events about the server itself (the bot being removed from it)."""
    return Origin(platform=PLATFORM, workspace=workspace_id(guild_id, 0))


class Conversations:
    """Which bot messages belong to which conversation (bounded, in memory).

    After a restart the map is empty; replies still work because a referenced bot message is recognised by its
    author. Which threads the bot takes part in is the core's to say (`Assistant.knows_thread`).
    """

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._roots: OrderedDict[int, str] = OrderedDict()

    def remember_answer(self, bot_message_id: int, root: str) -> None:
        """Record that a bot message answers the conversation rooted at `root`."""
        self._roots[bot_message_id] = root
        self._roots.move_to_end(bot_message_id)
        while len(self._roots) > self._capacity:
            self._roots.popitem(last=False)

    def root_of(self, bot_message_id: int) -> str | None:
        """The conversation a bot message belongs to, if remembered."""
        return self._roots.get(bot_message_id)


@dataclass(frozen=True)
class Addressed:
    """A message meant for the bot."""

    text: str  # the message without the bot's mention
    root: str  # the conversation root (question message id, or thread id): `Origin.thread`
    follow_up: bool  # a reply to the bot, or a message in a thread the bot talks in
    thread_id: int | None  # set when the message was posted in a thread
    explicit: bool = True  # False for an unmentioned message in a bot thread (may be meant for other people)


def from_a_person(message: discord.Message, me: discord.abc.User) -> bool:
    """Whether a message is one people wrote (not a bot's, a webhook's or a system message)."""
    author = message.author
    if author.bot or author.id == me.id or message.webhook_id is not None:
        return False
    return message.type in (discord.MessageType.default, discord.MessageType.reply)


def addressed_to_bot(
    message: discord.Message, me: discord.abc.User, conversations: Conversations, *, in_bot_thread: bool = False
) -> Addressed | None:
    """Decide whether a message is for the bot (mention, DM, reply to the bot, bot thread), or None to ignore it.

    `in_bot_thread`: the message's thread is one the bot replied in (the core knows, `Assistant.knows_thread`);
    threads the bot created count too.
    """
    if not from_a_person(message, me):
        return None
    channel = message.channel
    thread_id = channel.id if isinstance(channel, discord.Thread) else None
    bot_roles = _bot_role_ids(message, me.id)
    text = strip_bot_mention(message.content, me.id, bot_roles)
    mentioned = me.id in message.raw_mentions or any(r in bot_roles for r in message.raw_role_mentions)
    replied_root = _replied_conversation(message, me.id, conversations)
    if replied_root is not None:
        return Addressed(text, replied_root, True, thread_id)
    if isinstance(channel, discord.Thread) and (in_bot_thread or channel.owner_id == me.id):
        return Addressed(text, str(channel.id), True, thread_id, explicit=mentioned)
    if mentioned or message.guild is None:
        root = str(thread_id) if thread_id is not None else str(message.id)
        return Addressed(text, root, False, thread_id)
    return None


def for_other_people(message: discord.Message, me: discord.abc.User) -> bool:
    """Whether a message mentions someone (a user, a role, @everyone/@here) and not the bot or its role.

    In a thread the bot answered in, such a message without a mention of the bot is between people
    ("@Dave can you try this on staging?"): the bot stays out of it. A channel link mentions no one.
    """
    bot_ids = {str(me.id), *(str(role_id) for role_id in _bot_role_ids(message, me.id))}
    return addresses_others(message.content, bot_ids)


def _replied_conversation(message: discord.Message, bot_id: int, conversations: Conversations) -> str | None:
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    known = conversations.root_of(reference.message_id)
    if known is not None:
        return known
    replied = reference.resolved if isinstance(reference.resolved, discord.Message) else reference.cached_message
    if replied is None or replied.author.id != bot_id:
        return None
    # An answer we no longer remember: its own reference points at the question that started the conversation.
    if replied.reference is not None and replied.reference.message_id is not None:
        return str(replied.reference.message_id)
    return str(replied.id)


def _bot_role_ids(message: discord.Message, bot_id: int) -> set[int]:
    """The bot's managed role in this guild: people often pick it instead of the bot when @-mentioning."""
    guild = message.guild
    if guild is None:
        return set()
    return {role.id for role in guild.roles if role.tags is not None and role.tags.bot_id == bot_id}


def strip_bot_mention(content: str, bot_id: int, role_ids: set[int] | frozenset[int] = frozenset()) -> str:
    """The message text without mentions of the bot (user or managed-role mentions)."""
    text = re.sub(rf"<@!?{bot_id}>", " ", content)
    for role_id in role_ids:
        text = text.replace(f"<@&{role_id}>", " ")
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def upload_name(text: str) -> str | None:
    """A spec name typed next to an attached file (`@bot stripe`, `@bot upload as stripe`), if any."""
    words = [w for w in text.split() if w.lower() not in _UPLOAD_WORDS and w != PRIVATE_WORD]
    if len(words) == 1 and _SPEC_NAME.match(words[0]):
        return words[0]
    return None


def is_workspace_admin(user: discord.User | discord.Member, permissions: discord.Permissions | None = None) -> bool:
    """Manage Server (or being the owner) makes a member an admin of the guild's specs; in a DM, the user is."""
    if not isinstance(user, discord.Member):
        return True  # a DM: the workspace is private to this user
    resolved = permissions if permissions is not None else user.guild_permissions
    return resolved.manage_guild or resolved.administrator


def _parent_channel(channel: object) -> str:
    """A thread's parent channel, whose settings (default spec, private specs) apply in it; "" otherwise."""
    if isinstance(channel, discord.Thread) and channel.parent_id:
        return str(channel.parent_id)
    return ""


def message_origin(message: discord.Message, root: str) -> Origin:
    """The core's view of where a message came from."""
    return Origin(
        platform=PLATFORM,
        workspace=workspace_id(message.guild.id if message.guild else None, message.author.id),
        channel=str(message.channel.id),
        parent_channel=_parent_channel(message.channel),
        user=str(message.author.id),
        thread=root,
        event_id=str(message.id),
        user_name=message.author.display_name[:80],
        is_admin=is_workspace_admin(message.author),
    )


def interaction_origin(interaction: discord.Interaction) -> Origin:
    """The core's view of where a slash command came from (a thread is its own conversation)."""
    channel_id = interaction.channel_id
    thread = str(channel_id) if isinstance(interaction.channel, discord.Thread) else ""
    return Origin(
        platform=PLATFORM,
        workspace=workspace_id(interaction.guild_id, interaction.user.id),
        channel=str(channel_id or ""),
        parent_channel=_parent_channel(interaction.channel),
        user=str(interaction.user.id),
        thread=thread,
        event_id=str(interaction.id),
        user_name=interaction.user.display_name[:80],
        is_admin=is_workspace_admin(interaction.user, interaction.permissions if interaction.guild_id else None),
    )


def to_attachment(
    attachment: discord.Attachment, session: aiohttp.ClientSession, policy: TrustedOrigins
) -> DiscordAttachment:
    """A lazy core attachment for a Discord attachment (nothing is downloaded here)."""
    return DiscordAttachment(
        filename=attachment.filename, size=attachment.size, url=attachment.url, session=session, policy=policy
    )
