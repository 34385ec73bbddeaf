"""Thread memory: the last few turns of each conversation thread, kept in the shared state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from core.state.caches import NS_THREADS, StateStore

log = structlog.get_logger(__name__)

_MAX_QUESTION_CHARS = 1_000
_MAX_SUMMARY_CHARS = 1_500
_MAX_REFERENCES = 20
_MAX_REFERENCE_CHARS = 300
MAX_BEST_CHARS = 600  # JSON: clipping would leave it unreadable, so a longer one is dropped


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_all(items: Any) -> tuple[str, ...]:
    return tuple(_clip(str(item), _MAX_REFERENCE_CHARS) for item in tuple(items)[:_MAX_REFERENCES])


@dataclass(frozen=True)
class Turn:
    """One question and a summary of its answer, remembered for follow-up questions in the same thread.

    Text is clipped on construction (question 1,000 chars, answer summary 1,500, at most 20 specs and
    citations of 300 chars each, topic and action 300; a best item over 600 is dropped) so a thread's
    memory stays small.
    """

    question: str
    answer_summary: str
    specs: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()
    topic: str = ""  # what the exchange was about ("pet"), for the next question's "it" (see core.followups)
    best: str = ""  # the answer's best item (`core.followups.remembered_item`)
    action: str = ""  # the question's main verb ("mute"), for a following "undo that"

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", _clip(self.question, _MAX_QUESTION_CHARS))
        object.__setattr__(self, "answer_summary", _clip(self.answer_summary, _MAX_SUMMARY_CHARS))
        object.__setattr__(self, "specs", _clip_all(self.specs))
        object.__setattr__(self, "citations", _clip_all(self.citations))
        object.__setattr__(self, "topic", _clip(self.topic, _MAX_REFERENCE_CHARS))
        object.__setattr__(self, "action", _clip(self.action, _MAX_REFERENCE_CHARS))
        object.__setattr__(self, "best", self.best if len(self.best) <= MAX_BEST_CHARS else "")

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form (see `from_json`)."""
        return {
            "q": self.question,
            "a": self.answer_summary,
            "s": list(self.specs),
            "c": list(self.citations),
            "t": self.topic,
            "b": self.best,
            "v": self.action,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Turn:
        """Rebuild a turn stored by `to_json`; raises KeyError/TypeError on malformed data."""
        return cls(
            str(data["q"]),
            str(data["a"]),
            tuple(data.get("s", ())),
            tuple(data.get("c", ())),
            str(data.get("t", "")),  # absent in turns remembered before topics existed
            str(data.get("b", "")),
            str(data.get("v", "")),
        )


class ConversationMemory:
    """The last few turns of each thread, kept in `SharedState` so every instance sees the same history.

    `thread_key` should identify the thread across platforms, e.g. `f"{platform}:{workspace}:{channel}:{thread}"`.
    A thread's memory expires `ttl` seconds after its last turn. Two instances remembering a turn in the
    same thread at the same instant may keep only one of the two (last write wins).
    """

    def __init__(self, state: StateStore, max_turns: int = 6, ttl: float = 3600) -> None:
        if max_turns < 1:
            raise ValueError("max_turns must be >= 1")
        self._state = state
        self.max_turns = max_turns
        self.ttl = ttl

    async def history(self, thread_key: str) -> list[Turn]:
        """The thread's remembered turns, oldest first (empty for a new or expired thread)."""
        stored = await self._state.get(NS_THREADS, thread_key)
        if not isinstance(stored, list):
            return []
        turns = []
        for item in stored[-self.max_turns :]:
            try:
                turns.append(Turn.from_json(item))
            except (KeyError, TypeError, AttributeError):
                log.warning("conversation_turn_unreadable")
        return turns

    async def remember(self, thread_key: str, turn: Turn) -> None:
        """Append `turn` to the thread, keeping only the last `max_turns`, and restart its TTL."""
        turns = [*await self.history(thread_key), turn][-self.max_turns :]
        await self._state.set(NS_THREADS, thread_key, [t.to_json() for t in turns], ttl=self.ttl)

    async def forget(self, thread_key: str) -> None:
        """Drop the thread's memory."""
        await self._state.delete(NS_THREADS, thread_key)
