"""Which attachment URLs may be fetched, and reading a body that stops at the size limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.downloads import TrustedOrigins, read_within, url_origin
from core.errors import FileTooLargeError


def test_url_origin() -> None:
    assert url_origin("https://Files.Slack.com/x") == ("https", "files.slack.com", 443)
    assert url_origin("http://127.0.0.1:5555/cdn") == ("http", "127.0.0.1", 5555)
    for refused in ("ftp://files.slack.com/x", "https://user:pw@files.slack.com/x", "https://:pw@h/x", "http://[",
                    "http://h:99999/x", "file:///etc/passwd", "", "/relative"):
        assert url_origin(refused) is None, refused


@given(st.text(max_size=200))
def test_url_origin_never_raises(url: str) -> None:
    url_origin(url)
    url_origin("https://" + url)


def test_trusted_origins() -> None:
    trusted = TrustedOrigins.of("https://cdn.example", None, "not a url").including("http://127.0.0.1:5555/api/v10")
    assert trusted.allows("https://cdn.example:443/a.yaml")
    assert trusted.allows("http://127.0.0.1:5555/files/a.yaml")
    assert not trusted.allows("http://cdn.example/a.yaml")  # another scheme is another origin
    assert not trusted.allows("https://cdn.example.evil.test/a.yaml")
    assert not trusted.allows("http://127.0.0.1:6666/a.yaml")
    assert not TrustedOrigins().allows("https://cdn.example/a.yaml")


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_read_within_stops_as_soon_as_the_limit_is_passed() -> None:
    assert await read_within(_chunks(b"ab", b"cd"), "a.yaml", 4) == b"abcd"
    assert await read_within(_chunks(b"ab", b"cd"), "a.yaml", 4, declared=2) == b"abcd"  # a declared size lies
    read: list[bytes] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            read.append(b"x" * 10)
            yield b"x" * 10

    with pytest.raises(FileTooLargeError, match=r"`big\.yaml`"):
        await read_within(endless(), "big.yaml", 25)
    assert len(read) == 3
    with pytest.raises(FileTooLargeError):
        await read_within(_chunks(), "a.yaml", 4, declared=5)  # refused before reading anything
