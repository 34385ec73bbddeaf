"""Sentences only the Discord adapter says; everything shared with other platforms is in `core.messages`."""

from __future__ import annotations

WAYS = """**Ask**: mention me with a question (`@API Assistant how do I refund an order?`; I answer in a thread on \
your message when I may open one), or write to me in a DM. Keep talking in that thread (or reply to one of my \
answers) for a follow-up, no mention needed (a message there that mentions only other people is left to them). \
Name a language for the snippet ("in python", "with curl", "node"), or use the buttons under an answer.
**Upload**: attach a spec file to a message that mentions me (add a word to choose its name: `@API Assistant stripe`).
Specs uploaded in a server are shared by everyone in that server; DMs have their own private set."""


def too_many_attachments(handled: int, total: int) -> str:
    """More files in one message than we index at once."""
    return f"I index at most {handled} files per message, so I skipped the other {total - handled}."


def not_a_discord_file(filename: str) -> str:
    """An attachment whose URL is not on Discord's CDN."""
    return f"I can only read files uploaded to Discord itself, so I didn't fetch `{filename}`."


def download_failed(filename: str) -> str:
    """The CDN did not give us the file."""
    return f"I couldn't download `{filename}` from Discord just now. Please try uploading it again."


def indexing_started(filename: str) -> str:
    """Shown when indexing takes more than a moment."""
    return f"Indexing `{filename}`…"


def command_failed() -> str:
    """A slash command could not run at all (for example, commands out of sync with the bot)."""
    return "That command couldn't run. If I was just updated, wait a minute and try again."


OTHER_LANGUAGE = "Show in another language…"


def show_language(label: str) -> str:
    """A button showing an answer's snippet in another language."""
    return f"Show {label}"


def feedback_thanks(helpful: bool) -> str:
    """Confirmation of a 👍/👎 click (only the clicker sees it)."""
    return "Thanks, glad it helped! 👍" if helpful else "Thanks for telling me; I've noted that this answer missed. 👎"


def feedback_already(helpful: bool) -> str:
    """The same person clicked again on the same answer."""
    return "You've already rated this answer; thanks!"


DEFAULT_THREAD_NAME = "API question"  # a thread's name when the question's first line has no words to use
