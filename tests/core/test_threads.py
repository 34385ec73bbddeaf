"""Which threads the bot takes part in: shared by every instance, so a follow-up anywhere needs no mention."""

from __future__ import annotations

import asyncio

from core.actions import AskQuestion, Origin, PathAttachment, PurgeWorkspace, UploadSpec
from core.state import SharedState
from core.threads import ThreadPresence

THREAD = Origin("slack", "T1", channel="C1", user="U1", thread="1700.000100")


async def test_presence_is_per_thread_shared_and_expires() -> None:
    state = SharedState()
    one, other_instance = ThreadPresence(state), ThreadPresence(state, ttl=0.2)
    assert not await one.knows(THREAD)
    await other_instance.note(THREAD)
    assert await one.knows(THREAD)  # noted by another instance sharing the state
    assert not await one.knows(Origin("slack", "T1", channel="C1", thread="1700.000200"))
    assert not await one.knows(Origin("slack", "T2", channel="C1", thread="1700.000100"))  # another workspace
    assert not await one.knows(Origin("slack", "T1", channel="C1"))  # no thread at all
    await asyncio.sleep(0.3)
    assert not await one.knows(THREAD)


async def test_knows_thread_after_a_reply_or_an_answer_until_the_workspace_is_purged(assistant, example_spec) -> None:
    await assistant.ingest(UploadSpec(Origin("slack", "T1", user="U1"), PathAttachment(example_spec), "bookshop"))
    assert not await assistant.knows_thread(THREAD)
    await assistant.note_thread(THREAD)  # the adapter replied there (an upload report, an error, ...)
    assert await assistant.knows_thread(THREAD)
    answered = Origin("slack", "T1", channel="C2", user="U1", thread="1800.000100")
    await assistant.ask(AskQuestion(answered, "how do I refund an order?"))  # its conversation memory
    assert await assistant.knows_thread(answered)
    await assistant.purge_workspace(PurgeWorkspace(Origin("slack", "T1"), "app_uninstalled"))
    assert not await assistant.knows_thread(THREAD) and not await assistant.knows_thread(answered)
