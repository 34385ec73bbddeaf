"""The live-message throttle every platform shares: first write at once, coalesced edits, the final always last."""

from __future__ import annotations

import asyncio
import itertools
import time

from structlog.testing import capture_logs

from core.live import LiveMessage, LiveReply, ProgressLook, working_sign
from core.replies import ReplyMarkup, TextReply, Transport

INTERVAL = 0.2


class Screen:
    """Records every write with its time; `fail` makes the next writes raise."""

    def __init__(self) -> None:
        self.writes: list[tuple[float, str]] = []
        self.fail = 0

    async def write(self, content: str) -> None:
        await asyncio.sleep(0.01)  # a write takes a moment, as an HTTP call does
        if self.fail:
            self.fail -= 1
            raise RuntimeError("platform said no")
        self.writes.append((time.monotonic(), content))

    @property
    def contents(self) -> list[str]:
        return [content for _, content in self.writes]

    def gaps(self) -> list[float]:
        return [b - a for (a, _), (b, _) in itertools.pairwise(self.writes)]


async def test_first_write_at_once_then_latest_content_once_per_interval_and_final_last() -> None:
    screen = Screen()
    live = LiveMessage(screen.write, INTERVAL)
    started = time.monotonic()
    await live.show("a")
    assert screen.contents == ["a"] and screen.writes[0][0] - started < INTERVAL  # not throttled
    for text in ("b", "c", "d"):
        await live.show(text)
        await asyncio.sleep(INTERVAL / 4)
    await asyncio.sleep(INTERVAL)
    assert screen.contents == ["a", "d"]  # b and c were coalesced away: the latest content won
    await live.show("e")
    await live.finish("final")
    assert screen.contents == ["a", "d", "final"]  # e was waiting: the final content replaced it
    assert all(gap >= INTERVAL - 0.02 for gap in screen.gaps()), screen.gaps()
    assert live.done
    await live.show("late")
    live.request("later")
    await asyncio.sleep(INTERVAL * 1.5)
    assert screen.contents[-1] == "final"  # nothing is written after the final content


async def test_final_without_earlier_writes_is_not_delayed() -> None:
    screen = Screen()
    live = LiveMessage(screen.write, 10.0)
    started = time.monotonic()
    await live.finish("only")
    assert screen.contents == ["only"] and screen.writes[0][0] - started < 1.0


async def test_delay_holds_back_the_first_write_so_quick_work_shows_only_its_result() -> None:
    quick = Screen()
    live = LiveMessage(quick.write, INTERVAL, delay=INTERVAL)
    live.request("placeholder")
    await live.show("progress")  # still inside the delay: waits in the background like any other
    await live.finish("result")
    assert quick.contents == ["result"]

    slow = Screen()
    live = LiveMessage(slow.write, INTERVAL, delay=INTERVAL)
    started = time.monotonic()
    live.request("placeholder")
    await asyncio.sleep(INTERVAL * 1.5)
    assert slow.contents == ["placeholder"] and slow.writes[0][0] - started >= INTERVAL - 0.02
    live.request("progress 1/2")
    await live.finish("result")
    assert slow.contents == ["placeholder", "result"]
    assert all(gap >= INTERVAL - 0.02 for gap in slow.gaps()), slow.gaps()


async def test_stop_drops_what_waits_but_lets_a_write_in_flight_end() -> None:
    screen = Screen()
    async with LiveMessage(screen.write, INTERVAL) as live:
        await live.show("a")
        live.request("waiting")
    await asyncio.sleep(INTERVAL * 1.5)
    assert screen.contents == ["a"] and not live.done

    screen = Screen()
    live = LiveMessage(screen.write, 0.0)
    await live.show("a")
    live.request("in flight")
    await asyncio.sleep(0.005)  # the background write has started
    await live.stop()
    assert screen.contents == ["a", "in flight"]


async def test_a_failed_first_write_raises_a_failed_background_write_is_logged_and_the_next_tried() -> None:
    screen = Screen()
    live = LiveMessage(screen.write, INTERVAL / 4, transport=Transport("chat"))
    screen.fail = 1
    try:
        await live.show("a")
    except RuntimeError:
        pass
    else:
        raise AssertionError("the first write's failure must reach the caller")
    screen.fail = 1
    with capture_logs() as logs:
        live.request("b")
        await asyncio.sleep(INTERVAL / 2)
        live.request("c")
        await asyncio.sleep(INTERVAL / 2)
    assert [e["event"] for e in logs] == ["chat_progress_update_failed"]
    assert screen.contents == ["c"]
    await live.finish("final")
    assert screen.contents == ["c", "final"]


class Recorded(LiveReply[str, list[str]]):
    def __init__(self, screen: Screen, look: ProgressLook[str]) -> None:
        markup: ReplyMarkup[list[str]] = ReplyMarkup(
            answer=lambda r: [r.question], specs=lambda r: ["specs"], ingest=lambda r: [r.name],
            help=lambda r: ["help"], text=lambda text: [f"text:{text}"],
        )
        super().__init__(LiveMessage(screen.write, 0.0), look, markup)
        self.delivered: list[list[str]] = []

    async def deliver(self, rendered: list[str]) -> None:
        self.delivered.append(rendered)
        await self.live.finish(rendered[0])


async def test_live_reply_shows_progress_in_its_look_and_delivers_the_rendered_reply() -> None:
    screen = Screen()
    reply = Recorded(screen, ProgressLook(partial=lambda t: f"partial:{t}", progress=str))
    async with reply:
        await reply.status("Searching…")  # no status look: not shown
        await reply.partial("To refund")
        await reply.final(TextReply("done"))
    assert screen.contents == ["partial:To refund", "text:done"] and reply.delivered == [["text:done"]]

    screen = Screen()
    reply = Recorded(screen, ProgressLook(partial=str, progress=str, status=lambda t: f"status:{t}"))
    await reply.status("Working…")
    await reply.fail("Sorry")
    assert screen.contents == ["status:Working…", "text:Sorry"]


async def test_working_sign_lasting_is_shown_then_hidden_and_a_failure_never_stops_the_work() -> None:
    steps: list[str] = []

    async def show() -> None:
        steps.append("show")

    async def hide() -> None:
        steps.append("hide")

    async with working_sign(show, hide):
        steps.append("work")
    assert steps == ["show", "work", "hide"]

    async def refused() -> None:
        raise RuntimeError("no permission")

    steps.clear()
    with capture_logs() as logs:
        async with working_sign(refused, hide, transport=Transport("chat")):
            steps.append("work")
    assert steps == ["work"]  # never shown, so never hidden
    assert [e["event"] for e in logs] == ["chat_working_sign_failed"]


async def test_working_sign_fading_is_shown_again_until_the_work_ends() -> None:
    shown: list[float] = []

    async def typing() -> None:
        shown.append(time.monotonic())

    async with working_sign(typing, every=0.05):
        await asyncio.sleep(0.22)
    count = len(shown)
    assert 3 <= count <= 6
    await asyncio.sleep(0.15)
    assert len(shown) == count  # stopped with the work
