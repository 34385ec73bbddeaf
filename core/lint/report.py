"""A quality report in words: one line for an upload's reply, a summary for chat, the full report as a file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from core import messages
from core.lint.model import INVALID, KINDS, Finding
from core.lint.validity import Validity

SUMMARY_PER_KIND = 3  # findings listed per kind in chat
UPLOAD_PARTS = 3  # kinds named in an upload's one line


@dataclass(frozen=True)
class LintReport:
    """Everything the linter found in one spec."""

    name: str
    format: str  # "OpenAPI 3", ...
    operations: int
    validity: Validity | None  # None: the format has no schema to validate against
    findings: tuple[Finding, ...]
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """Findings of every kind, invalid ones included."""
        return sum(self.counts.values())

    def upload_line(self) -> str:
        """"12 operations have no description; 3 write operations declare no auth" (coverage only)."""
        parts = [messages.lint_count(kind, self.counts[kind]) for kind in KINDS
                 if kind != INVALID and self.counts.get(kind)]
        if not parts:
            return messages.lint_upload_clean()
        return "; ".join(parts[:UPLOAD_PARTS]) + messages.lint_upload_more(self.name)

    def summary(self) -> str:
        """Validity, counts per kind, and the first few findings of each (Markdown)."""
        lines = [messages.lint_headline(self.name, self.format, self.operations, self.total), self._validity_line()]
        by_kind: dict[str, list[Finding]] = {}
        for finding in self.findings:
            by_kind.setdefault(finding.kind, []).append(finding)
        for kind in KINDS:
            count = self.counts.get(kind, 0)
            if not count:
                continue
            lines += ["", f"**{messages.lint_count(kind, count)}**"]
            lines += [f"• {_where(f)}" for f in by_kind.get(kind, [])[:SUMMARY_PER_KIND]]
            if count > SUMMARY_PER_KIND:
                lines.append(f"• {messages.lint_and_more(count - SUMMARY_PER_KIND)}")
        return "\n".join(lines)

    def needs_file(self) -> bool:
        """Whether the summary leaves findings out."""
        return any(count > SUMMARY_PER_KIND for count in self.counts.values())

    def full_text(self) -> str:
        """Every finding, by kind, with its location (plain text)."""
        lines = [messages.lint_headline(self.name, self.format, self.operations, self.total).replace("`", ""),
                 self._validity_line().replace("`", ""), ""]
        for kind in KINDS:
            count = self.counts.get(kind, 0)
            if not count:
                continue
            lines.append(f"{kind}: {count}")
            kept = [f for f in self.findings if f.kind == kind]
            lines += [f"  - {_where(f).replace('`', '')}" for f in kept]
            if count > len(kept):
                lines.append(f"  - {messages.lint_and_more(count - len(kept))}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def filename(self) -> str:
        """`stripe-lint.txt`."""
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name)[:100] + "-lint.txt"

    def _validity_line(self) -> str:
        if self.validity is None:
            return messages.lint_not_validated(self.format)
        if not self.validity.checked:
            return messages.lint_validation_skipped(self.validity.version, self.validity.note)
        errors = len(self.validity.errors) + self.validity.more
        return messages.lint_valid(self.validity.version, errors)


def _where(finding: Finding) -> str:
    parts = (f"`{finding.where}`" if finding.where else "", f"`{finding.pointer}`" if finding.pointer else "")
    place = " ".join(p for p in parts if p)
    detail = finding.detail
    return f"{place}: {detail}" if place and detail else place or detail


def counts_of(findings: list[Finding], extra: Counter[str]) -> dict[str, int]:
    """Counts per kind in `KINDS` order."""
    return {kind: extra[kind] for kind in KINDS if extra.get(kind)}
