"""Follow-up evaluation: whether the second question of a thread gets its own answer.

Each pair is asked as a user would, through `Assistant.ask` in one thread: the first question, then the
follow-up ("how do I add a new pet?", then "and how do I delete one?"). The follow-up is right when the
operation its answer puts first (its first citation) matches the pair's gold item; the first question's
answer is checked the same way, so a miss there (which leaves the follow-up nothing to refer to) is visible.
Every pair's follow-up gold differs from its first question's gold. In the same run, the way follow-ups were
searched before (the previous question and the new one as one query, in the thread's spec) is scored as the
baseline.

The files: `followups.jsonl` (40 pairs) was used while designing; `followups_heldout.jsonl` (20) was written
before the design was tuned; `followups_fresh.jsonl` (20) was written later by someone who had seen neither the
code nor the other files (told only the format and to check every gold item against the spec), and was first
scored before any change was made for it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.actions import AskQuestion, ForgetSpec, Origin, PathAttachment, UploadSpec
from core.answers import Answer
from core.assistant import Assistant
from evaluation.retrieval import first_hit_rank

FOLLOWUPS = Path(__file__).resolve().parent / "followups.jsonl"


@dataclass(frozen=True)
class FollowUpPair:
    """A first question and the follow-up asked after it in the same thread, with the gold items of each."""

    id: str
    spec: str
    first: str
    first_gold: list[dict[str, str]]
    question: str
    gold: list[dict[str, str]]


def load_pairs(path: Path = FOLLOWUPS) -> list[FollowUpPair]:
    """Read a JSON Lines file of follow-up pairs."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            pairs.append(
                FollowUpPair(
                    data["id"], data["spec"], data["first"], data["first_gold"], data["question"], data["gold"]
                )
            )
    return pairs


def first_cited(answer: Answer, gold: list[dict[str, str]]) -> bool:
    """Whether the answer's first citation (its best match) is one of the gold items."""
    return first_hit_rank([c.item for c in answer.citations[:1]], gold) == 1


@dataclass
class FollowUpResult:
    """Per pair: whether the first answer and the follow-up's answer put the gold item first."""

    pairs: list[FollowUpPair]
    first_right: list[bool]
    follow_up_right: list[bool]
    follow_up_cited: list[dict[str, str]]
    baseline_right: list[bool]

    @property
    def accuracy(self) -> float:
        """The share of follow-ups whose answer puts the gold item first."""
        return sum(self.follow_up_right) / (len(self.pairs) or 1)

    def summary(self) -> str:
        """One line: follow-up accuracy, and how often the first question was answered right."""
        n = len(self.pairs)
        after_right_first = [f for f, first in zip(self.follow_up_right, self.first_right, strict=True) if first]
        return (
            f"follow-ups: {sum(self.follow_up_right)}/{n} right ({self.accuracy:.3f}); "
            f"{sum(after_right_first)}/{len(after_right_first)} after a right first answer; "
            f"first questions: {sum(self.first_right)}/{n} right; "
            f"baseline (both questions as one query): {sum(self.baseline_right)}/{n} ({self.baseline_accuracy:.3f})"
        )

    @property
    def baseline_accuracy(self) -> float:
        """The share of follow-ups the previous way of searching (both questions as one query) got right."""
        return sum(self.baseline_right) / (len(self.pairs) or 1)


async def run_followup_evaluation(
    assistant: Assistant, pairs: list[FollowUpPair], specs_dir: Path, log: Callable[[str], Any] = print
) -> FollowUpResult:
    """Ingest each named spec into a throwaway workspace, ask every pair in its own thread, and score."""
    workspace = f"eval-{uuid.uuid4().hex[:12]}"
    uploader = Origin(platform="eval", workspace=workspace, user="eval")
    names: dict[str, str] = {}
    result = FollowUpResult(pairs, [], [], [], [])
    try:
        for spec_file in sorted({p.spec for p in pairs}):
            report = await assistant.ingest(UploadSpec(uploader, PathAttachment(specs_dir / spec_file)))
            names[spec_file] = report.record.name
            log(f"indexed {spec_file}: {report.record.operation_count} operations in {report.seconds:.1f}s")
        for pair in pairs:
            # One user per pair, so the per-user question limit never decides the result.
            origin = Origin(platform="eval", workspace=workspace, channel="c", user=f"u-{pair.id}", thread=pair.id)
            # The first question names its spec (as `/api ask --spec` does); the follow-up relies on the thread.
            first = await assistant.ask(AskQuestion(origin, pair.first, spec=names[pair.spec]))
            follow_up = await assistant.ask(AskQuestion(origin, pair.question))
            result.first_right.append(first_cited(first, pair.first_gold))
            result.follow_up_right.append(first_cited(follow_up, pair.gold))
            result.follow_up_cited.append(dict(follow_up.citations[0].item) if follow_up.citations else {})
            joined = await assistant.search(uploader, f"{pair.first} {pair.question}", spec=names[pair.spec], limit=1)
            result.baseline_right.append(first_hit_rank([i.document.item for i in joined], pair.gold) == 1)
    finally:
        for name in names.values():
            await assistant.forget(ForgetSpec(uploader, name))
    return result
