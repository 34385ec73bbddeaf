"""Sentences only the Slack adapter says (the shared ones live in `core.messages`).

Written in Markdown's common subset (`code`, **bold**, *emphasis*, bullets); `render` turns them into
escaped Slack mrkdwn, so nothing here can ever ping anyone.
"""

from __future__ import annotations

WORKING = "Working on it…"
ANSWER_TRUNCATED = "_(the rest of this answer was too long for Slack; ask a narrower question)_"
TEXT_TRUNCATED = "…"
FEEDBACK_BUTTON_UP = "👍 Helpful"
FEEDBACK_BUTTON_DOWN = "👎 Not helpful"
SOURCES_LABEL = "Sources:"
PROMPTS_TITLE = "Ask about your APIs"  # above the suggested prompts of the assistant panel
PROMPT_SPECS_TITLE = "What specs do you have?"
PROMPT_SPECS_QUESTION = "What specs do you have?"

WAYS = """**Ask:** mention me in a channel or a group DM (`@API Assistant how do I refund an order?`), send me a DM, \
or open my assistant panel. \
Reply in my thread to ask a follow-up without mentioning me again \
(a reply there that mentions only other people is left to them).
**Upload:** share an OpenAPI/Swagger file (JSON or YAML), a Postman collection, a GraphQL schema or a Markdown API doc \
with a mention of me in a channel I'm in, or in a DM. I index it under its file name. \
Slash command replies are only shown to you."""


REPORT_SENT_BY_DM = "I've sent you the full report in our DM."


def prompt_auth_title(spec: str) -> str:
    """A suggested prompt's title in the assistant panel, for one indexed spec."""
    return f"Authenticate with {spec}"


def prompt_auth_question(spec: str) -> str:
    """The question a suggested prompt asks."""
    return f"How do I authenticate with {spec}?"


def indexing(filename: str) -> str:
    """Shown as soon as an upload passes the name/size checks."""
    return f"Reading `{filename}`…"


def feedback_thanks(helpful: bool) -> str:
    """Confirmation of a 👍/👎 click (only the clicker sees it)."""
    return "Thanks, glad it helped! 👍" if helpful else "Thanks for telling me; I've noted that this answer missed. 👎"


def feedback_already(helpful: bool) -> str:
    """The same person clicked again on the same answer."""
    return "You've already rated this answer; thanks!"


def download_not_allowed(filename: str) -> str:
    """The file's URL is not on Slack's own file host."""
    return f"I can only download files hosted by Slack, so I didn't fetch `{filename}`."


def download_failed(filename: str) -> str:
    """Slack did not hand over the file."""
    return (
        f"I couldn't download `{filename}` from Slack. Please try uploading it again; if it keeps failing, "
        "an admin should check that the app has the `files:read` scope."
    )


def download_sign_in_page(filename: str) -> str:
    """Slack answered with its sign-in page: the token cannot read files."""
    return (
        f"Slack wouldn't let me download `{filename}` (I got a sign-in page instead of the file). "
        "An admin needs to add the `files:read` scope to the app and reinstall it."
    )


def file_details_missing() -> str:
    """A shared file whose details Slack did not send and `files.info` did not return."""
    return "I couldn't see that file's details, so I didn't index it. Try uploading it directly here."


def no_specs() -> str:
    """`/api specs` on an empty workspace."""
    return "No specs are indexed here yet. Share a spec file in a channel I'm in, or send it to me in a DM."


def specs_heading(count: int) -> str:
    """Heading of the spec list."""
    return f"**{count} indexed spec{'s' * (count != 1)}:**"


def reply_failed() -> str:
    """Shown in place of "Working on it…" when Slack took neither the answer nor a new message with it."""
    return "Sorry, Slack wouldn't take my answer just now, so I couldn't show it here. Please ask again in a minute."


def slash_too_many_parts() -> str:
    """The last of the messages a slash command may send."""
    return "_(the answer was cut short: slash commands can only send a few messages; mention me for the full one)_"
