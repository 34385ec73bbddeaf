from __future__ import annotations

import io

import discord

from bot.discord_app.render import MESSAGE_LIMIT, ZERO_WIDTH_SPACE
from bot.discord_app.replies import MessageSeries, safe_content


class RecordingSeries(MessageSeries):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, int, str]] = []
        self.screen: list[str] = []

    async def _create(self, index: int, content: str) -> None:
        self.ops.append(("create", index, content))
        self.screen.append(content)

    async def _edit(self, index: int, content: str) -> None:
        self.ops.append(("edit", index, content))
        self.screen[index] = content

    async def _delete(self, index: int) -> None:
        self.ops.append(("delete", index, ""))
        del self.screen[index]

    async def _send_extra(self, content: str, file: discord.File | None) -> None:
        self.ops.append(("extra", len(self.screen), content + (f" [{file.filename}]" if file else "")))


async def test_show_edits_in_place_and_trims() -> None:
    series = RecordingSeries()
    await series.show(["a ▌"])
    await series.show(["a b", "c ▌"])
    await series.show(["a b", "c ▌"])  # unchanged: no calls
    await series.show(["final"])
    assert series.screen == ["final"]
    assert series.ops == [
        ("create", 0, "a ▌"), ("edit", 0, "a b"), ("create", 1, "c ▌"), ("edit", 0, "final"), ("delete", 1, ""),
    ]


async def test_fail_replaces_the_reply() -> None:
    series = RecordingSeries()
    await series.show(["one", "two"])
    await series.fail("Sorry @here")
    assert series.screen == [f"Sorry @{ZERO_WIDTH_SPACE}here"]


def test_safe_content() -> None:
    assert safe_content("") == "…"
    assert len(safe_content("x" * 5000)) == MESSAGE_LIMIT
    assert "@everyone" not in safe_content("@everyone")


async def test_extra_messages_leave_the_reply_alone() -> None:
    series = RecordingSeries()
    await series.show(["the reply"])
    await series.send_extra("@everyone the report", discord.File(io.BytesIO(b"x"), "r.txt"))
    await series.show(["the reply"])  # the reply is still what `show` manages: nothing to change
    assert series.ops == [
        ("create", 0, "the reply"), ("extra", 1, safe_content("@everyone the report") + " [r.txt]"),
    ]
    assert "@everyone" not in series.ops[1][2]
