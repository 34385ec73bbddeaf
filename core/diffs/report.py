"""A diff in words: a short summary for chat (breaking changes listed, the rest counted) and a full report.

Both are built from the same `SpecDiff`; the full report goes out as a file when the summary had to cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from core import messages
from core.diffs.model import Change, SpecDiff
from core.registry import SpecVersion

SUMMARY_BREAKING = 10  # breaking changes listed in a chat summary
SUMMARY_KINDS = 8  # kinds of non-breaking change counted in a chat summary
UPLOAD_BREAKING = 5  # ... and in an upload's reply


@dataclass(frozen=True)
class ReportFile:
    """A file to attach to a reply: a full report, a diagram's PNG (adapters upload it; the terminal saves it)."""

    filename: str
    content: bytes
    caption: str = ""  # shown with the upload ("": the diff report's caption)


@dataclass(frozen=True)
class DiffReport:
    """The diff of two kept versions of one spec."""

    name: str
    old: SpecVersion
    new: SpecVersion
    diff: SpecDiff

    @property
    def headline(self) -> str:
        """Which versions, and how much changed."""
        before = messages.version_label(self.old.number, self.old.label)
        after = messages.version_label(self.new.number, self.new.label)
        if self.diff.empty:
            return messages.diff_nothing(self.name, before, after)
        other = self.diff.non_breaking_count - len(self.diff.added)
        return messages.diff_headline(
            self.name, before, after, self.diff.breaking_count, len(self.diff.added), len(self.diff.removed), other
        )

    def summary(self, breaking_limit: int = SUMMARY_BREAKING, kinds: int = SUMMARY_KINDS) -> str:
        """The headline, the first breaking changes, and non-breaking ones counted by kind (Markdown)."""
        lines = [self.headline]
        breaking = self.diff.breaking
        if breaking:
            lines += ["", messages.diff_breaking_heading()]
            lines += [f"• {change_line(c)}" for c in breaking[:breaking_limit]]
            more = self.diff.breaking_count - min(len(breaking), breaking_limit)
            if more > 0:
                lines.append(messages.diff_more_breaking(more, self.needs_file(breaking_limit)))
        counts = self.diff.counts(False)
        if counts:
            lines += ["", messages.diff_other_heading()]
            shown = list(counts.items())[:kinds]
            lines += [f"• {messages.rule_name(rule)}: {n}" for rule, n in shown]
            rest = sum(n for _, n in list(counts.items())[kinds:])
            if rest:
                lines.append(f"• {messages.rule_name('other')}: {rest}")
        if self.diff.truncated:
            lines += ["", messages.diff_partial()]
        return "\n".join(lines)

    def needs_file(self, breaking_limit: int = SUMMARY_BREAKING) -> bool:
        """Whether the summary leaves changes out, so the full report should go with it."""
        return self.diff.breaking_count > breaking_limit or bool(self.diff.non_breaking)

    def full_text(self) -> str:
        """Every change, breaking ones first, grouped by operation (plain text)."""
        lines = [self.headline.replace("`", ""), ""]
        for title, changes in (("BREAKING", self.diff.breaking), ("NON-BREAKING", self.diff.non_breaking)):
            if not changes:
                continue
            lines.append(title)
            where = None
            for change in changes:
                if change.where != where:
                    where = change.where
                    lines.append(f"  {where or '(whole spec)'}")
                lines.append("    - " + _text(change).replace("`", ""))
            lines.append("")
        if self.diff.uncounted:
            lines.append("ONLY COUNTED (too many to list)")
            lines += [f"  {rule}: {n}" for rule, _, n in self.diff.uncounted]
            lines.append("")
        if self.diff.truncated:
            lines.append(messages.diff_partial())
        return "\n".join(lines).rstrip() + "\n"

    def file(self) -> ReportFile:
        """The full report as a file."""
        name = f"{self.name}-diff-v{self.old.number}-v{self.new.number}.txt"
        return ReportFile(name, self.full_text().encode("utf-8"))


def change_line(change: Change) -> str:
    """`POST /pets`: request field `name` removed."""
    where = f"`{change.where}`: " if change.where else ""
    return where + _text(change)


def _text(change: Change) -> str:
    return messages.change_text(change.rule, change.subject, change.before, change.after)
