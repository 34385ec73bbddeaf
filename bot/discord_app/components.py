"""The buttons and menu under an answer: 👍/👎, "show Python" / "show curl", and "show in another language".

They survive restarts: each is a discord.py `DynamicItem` whose custom id says everything a click needs (the
answer id for a vote; the snippet's `language:ref:spec` value, `core.snippet_choice`, for a language), and the
client registers their templates once at start-up (`register`), so a click on an answer posted before a
restart, or by another replica, is matched by its custom id alone. The views themselves never time out.

Languages come from the snippet registry: the quick buttons are the usual ones (`QUICK_LANGUAGES`) other than
the one shown; the menu offers every language snippets are written in.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord
from discord import ui

from bot.discord_app import messages as discord_messages
from core.answers import Answer, AnswerKind
from core.snippet_choice import SnippetTarget, available_languages
from core.snippets import language_label

FEEDBACK_PREFIX = "fb"
SHOW_PREFIX = "sn"
MENU_PREFIX = "sl"
QUICK_LANGUAGES = ("python", "curl")  # the buttons people ask for most; the menu has every language
MAX_MENU_OPTIONS = 25  # Discord's limit for a select menu
_VALUE = r"[a-z0-9+#._-]{0,20}:[0-9a-f]{12}:[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
FEEDBACK_TEMPLATE = rf"{FEEDBACK_PREFIX}:(?P<vote>up|down):(?P<answer>[A-Za-z0-9_-]{{1,64}})"
SHOW_TEMPLATE = rf"{SHOW_PREFIX}:(?P<value>{_VALUE})"
MENU_TEMPLATE = rf"{MENU_PREFIX}:(?P<value>{_VALUE})"


class ComponentHandler(Protocol):
    """What a click calls; `handlers.DiscordHandlers` implements it."""

    async def on_feedback(self, interaction: discord.Interaction, answer_id: str, helpful: bool) -> None:
        """A 👍/👎 on an answer."""
        ...

    async def on_show_snippet(self, interaction: discord.Interaction, value: str) -> None:
        """A language chosen for an answer's snippet (`value`: `language:ref:spec`)."""
        ...


def _handler(interaction: discord.Interaction) -> ComponentHandler | None:
    # The client (`client.AssistantClient`) carries the handlers; a client that only syncs commands has none.
    handler: ComponentHandler | None = getattr(interaction.client, "handlers", None)
    return handler


class FeedbackButton(ui.DynamicItem[ui.Button[Any]], template=FEEDBACK_TEMPLATE):
    """👍 or 👎 on one answer."""

    def __init__(self, answer_id: str, helpful: bool) -> None:
        vote = "up" if helpful else "down"
        super().__init__(ui.Button(
            style=discord.ButtonStyle.secondary, emoji="👍" if helpful else "👎",
            custom_id=f"{FEEDBACK_PREFIX}:{vote}:{answer_id}", row=0,
        ))
        self.answer_id = answer_id
        self.helpful = helpful

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str]
    ) -> FeedbackButton:
        """Rebuild the button from its custom id (a click after a restart)."""
        return cls(match["answer"], match["vote"] == "up")

    async def callback(self, interaction: discord.Interaction) -> None:
        """Record the vote."""
        handler = _handler(interaction)
        if handler is not None:
            await handler.on_feedback(interaction, self.answer_id, self.helpful)


class SnippetButton(ui.DynamicItem[ui.Button[Any]], template=SHOW_TEMPLATE):
    """"Python", "curl": the answer's snippet in that language."""

    def __init__(self, value: str, label: str = "") -> None:
        super().__init__(ui.Button(
            style=discord.ButtonStyle.secondary, label=label or None, custom_id=f"{SHOW_PREFIX}:{value}", row=0,
        ))
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str]
    ) -> SnippetButton:
        """Rebuild the button from its custom id."""
        return cls(match["value"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Show the snippet in the button's language."""
        handler = _handler(interaction)
        if handler is not None:
            await handler.on_show_snippet(interaction, self.value)


class LanguageMenu(ui.DynamicItem[ui.Select[Any]], template=MENU_TEMPLATE):
    """"Show in another language…": every snippet language but the one shown."""

    def __init__(self, value: str, options: list[discord.SelectOption] | None = None) -> None:
        super().__init__(ui.Select(
            custom_id=f"{MENU_PREFIX}:{value}", placeholder=discord_messages.OTHER_LANGUAGE,
            options=options or [discord.SelectOption(label="-")], min_values=1, max_values=1, row=1,
        ))
        self.value = value  # `:ref:spec`, without a language

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: ui.Item[Any], match: re.Match[str]
    ) -> LanguageMenu:
        """Rebuild the menu from its custom id; the choice is read from the interaction."""
        return cls(match["value"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Show the snippet in the chosen language."""
        handler = _handler(interaction)
        values = self.item.values  # the choice, read from the interaction when the menu was rebuilt
        if handler is not None and values:
            await handler.on_show_snippet(interaction, f"{str(values[0])[:20]}{self.value}")


DYNAMIC_ITEMS = (FeedbackButton, SnippetButton, LanguageMenu)


def register(client: discord.Client) -> None:
    """Make clicks on every answer's components reach the handlers, including answers sent before a restart."""
    client.add_dynamic_items(*DYNAMIC_ITEMS)


def answer_view(answer: Answer) -> ui.View | None:
    """The components under an answer (None: it gets none).

    👍/👎 on answers (not on a snippet shown on request: that is not an answer to rate); language buttons and
    the menu when the answer has a snippet.
    """
    view = ui.View(timeout=None)
    if answer.kind is not AnswerKind.SNIPPET and answer.answer_id:
        view.add_item(FeedbackButton(answer.answer_id, True))
        view.add_item(FeedbackButton(answer.answer_id, False))
    if answer.snippet is not None:
        for item in language_items(answer.snippet, answer.snippet_language):
            view.add_item(item)
    return view if view.children else None


def language_items(target: SnippetTarget, shown: str) -> list[ui.Item[Any]]:
    """Quick buttons for the usual languages, and the menu of every other one."""
    others = [language for language in available_languages() if language != shown]
    items: list[ui.Item[Any]] = [
        SnippetButton(target.value(language), discord_messages.show_language(language_label(language)))
        for language in QUICK_LANGUAGES if language in others
    ]
    if others:
        options = [discord.SelectOption(label=language_label(language), value=language)
                   for language in others[:MAX_MENU_OPTIONS]]
        items.append(LanguageMenu(target.value(""), options))
    return items
