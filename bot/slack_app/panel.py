"""Slack's assistant panel (the split view "assistant" container): what the bot shows there.

Pure functions, no SDK calls: the suggested prompts offered when someone opens a thread (built from the
workspace's specs, "How do I authenticate with Stripe?"), and the thread's title (its first question).
`bot.slack_app.handlers` wires them to Bolt's `AsyncAssistant` middleware.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.slack_app import messages as slack_messages
from core.mentions import ZERO_WIDTH_JOINER, defuse_mentions
from core.registry import SpecRecord

MAX_PROMPTS = 4  # Slack: assistant.threads.setSuggestedPrompts takes at most four
MAX_PROMPT_TITLE_CHARS = 75  # kept short: the panel shows titles on one line
MAX_PROMPT_MESSAGE_CHARS = 300
MAX_TITLE_CHARS = 100  # a thread title is a line in the history list, not the whole question
SPEC_PROMPTS = MAX_PROMPTS - 1  # the last one always asks what is indexed


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _safe(text: str, limit: int) -> str:
    """Spec titles are uploaders' text: nothing in a prompt may ping anyone."""
    return _clip(defuse_mentions(text.replace("<", "<" + ZERO_WIDTH_JOINER), ZERO_WIDTH_JOINER), limit)


def spec_title(record: SpecRecord) -> str:
    """How a prompt names a spec: its title ("Stripe API"), else the name it was indexed under."""
    return record.title.strip() or record.name


def suggested_prompts(records: Sequence[SpecRecord]) -> list[dict[str, str]]:
    """Up to four prompts: how to authenticate with the most recently indexed specs, then what is indexed.

    With nothing indexed yet, only the question that explains how to add a spec.
    """
    newest = sorted(records, key=lambda r: r.indexed_at, reverse=True)[:SPEC_PROMPTS]
    prompts = []
    for record in newest:
        name = spec_title(record)
        prompts.append({
            "title": _safe(slack_messages.prompt_auth_title(name), MAX_PROMPT_TITLE_CHARS),
            "message": _safe(slack_messages.prompt_auth_question(name), MAX_PROMPT_MESSAGE_CHARS),
        })
    prompts.append({"title": _safe(slack_messages.PROMPT_SPECS_TITLE, MAX_PROMPT_TITLE_CHARS),
                    "message": _safe(slack_messages.PROMPT_SPECS_QUESTION, MAX_PROMPT_MESSAGE_CHARS)})
    return prompts


def thread_title(question: str) -> str:
    """The title of an assistant thread: its first question, on one line and cut short."""
    return _safe(question, MAX_TITLE_CHARS) or slack_messages.PROMPTS_TITLE
