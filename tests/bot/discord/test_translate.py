from __future__ import annotations

import aiohttp
import pytest

from bot.discord_app.attachments import DiscordAttachment, cdn_policy
from bot.discord_app.runner import rest_base
from bot.discord_app.translate import Conversations, strip_bot_mention, upload_name, workspace_id
from core.errors import FileTooLargeError, UserFacingError
from tests.bot.discord.fake_discord import FakeDiscord


def test_strip_bot_mention() -> None:
    assert strip_bot_mention("<@42> how do I refund?", 42) == "how do I refund?"
    assert strip_bot_mention("hey <@!42>  what's   auth?", 42) == "hey what's auth?"
    assert strip_bot_mention("<@&7> list books", 42, {7}) == "list books"
    assert strip_bot_mention("ask <@43> too", 42) == "ask <@43> too"


def test_workspace_ids() -> None:
    assert workspace_id(123, 9) == "123"
    assert workspace_id(None, 9) == "dm-9"


@pytest.mark.parametrize(
    ("text", "name"),
    [("stripe", "stripe"), ("upload as stripe-v2", "stripe-v2"), ("", None), ("here is our api spec", None),
     ("upload bad/name", None)],
)
def test_upload_name(text: str, name: str | None) -> None:
    assert upload_name(text) == name


def test_conversations_are_bounded() -> None:
    conversations = Conversations(capacity=2)
    for i in range(3):
        conversations.remember_answer(i, f"root-{i}")
    assert conversations.root_of(0) is None
    assert conversations.root_of(2) == "root-2"


def test_cdn_policy() -> None:
    policy = cdn_policy("http://127.0.0.1:5555/api/v10")
    assert policy.allows("https://cdn.discordapp.com/attachments/1/2/spec.yaml?ex=1&hm=2")
    assert policy.allows("https://media.discordapp.net/attachments/1/2/spec.yaml")
    assert policy.allows("http://127.0.0.1:5555/cdn/attachments/1/spec.yaml")
    assert not policy.allows("http://cdn.discordapp.com/attachments/1/2/spec.yaml")  # not https
    assert not policy.allows("https://cdn.discordapp.com.evil.example/x.yaml")
    assert not policy.allows("https://user:pw@cdn.discordapp.com/x.yaml")
    assert not policy.allows("http://127.0.0.1:6666/x.yaml")
    assert not policy.allows("http://169.254.169.254/latest/meta-data")
    assert not cdn_policy().allows("http://127.0.0.1:5555/cdn/x.yaml")


def test_rest_base() -> None:
    assert rest_base("http://127.0.0.1:9") == "http://127.0.0.1:9/api/v10"
    assert rest_base("http://127.0.0.1:9/api/v10/") == "http://127.0.0.1:9/api/v10"


async def test_download_streams_and_stops_over_the_limit(fake: FakeDiscord) -> None:
    policy = cdn_policy(fake.api_url)
    url = fake.add_file("big.yaml", b"x" * 300_000)
    async with aiohttp.ClientSession() as session:
        # The declared size lies (says 10 bytes): the download itself must stop at the limit.
        attachment = DiscordAttachment("big.yaml", 10, url, session, policy)
        with pytest.raises(FileTooLargeError):
            await attachment.read(100_000)
        assert await DiscordAttachment("big.yaml", None, url, session, policy).read(400_000) == b"x" * 300_000
        with pytest.raises(UserFacingError):
            await DiscordAttachment("gone.yaml", 5, fake.cdn_url("gone.yaml"), session, policy).read(100)
        foreign = DiscordAttachment("x.yaml", 5, "https://example.com/x.yaml", session, policy)
        with pytest.raises(UserFacingError, match="uploaded to Discord"):
            await foreign.read(100)
