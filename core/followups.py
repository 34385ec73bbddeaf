"""Follow-up questions in a thread: the new question drives the search, the thread fills in what it lacks.

"And how do I delete one?" after "how do I add a new pet?" must find `DELETE /pet/{petId}`. Searching the two
questions together lets the first one win (its words and its "add" intent), so the follow-up is searched on
its own words, plus, only when it leans on the conversation ("it", "one", "them", "that", or no subject at
all), the *topic* of the previous turn: the things its question named (`pet`), never its verbs. When the
follow-up asks for an action the previous answer's operation does not do ("cancel" after `POST /store/order`),
that operation goes to the end of the results: the user has it already and wants its sibling; when the
follow-up names nothing of its own, the operation on the very same path that does what is asked comes first.
Which specs are in play comes from the thread as well (see `Assistant._question_scope`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from core.parsing.text import identifier_words
from core.paths import is_placeholder
from core.retrieval import (
    RetrievedItem,
    document_intents,
    is_action_word,
    item_suffix,
    question_intent,
    tokenize,
)
from core.state.threads import MAX_BEST_CHARS

MAX_TOPIC_WORDS = 6
_MAX_SCANNED_CHARS = 2_000  # a question is at most MAX_QUESTION_CHARS; this bounds the scan regardless

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words that stand for something said before. "this"/"that" only count standing alone ("undo that?"),
# since "the invoices that are unpaid" uses them as ordinary grammar.
_PRONOUNS = frozenset("it its itself one ones them they their theirs those these mine ours yours".split())
_DEMONSTRATIVES = frozenset({"this", "that"})
_SUBJECT_PRONOUNS = frozenset({"i", "we", "to"})  # "how do I open...", "how to open...": a verb follows
_STANDALONE_DEMONSTRATIVE = re.compile(r"\b(?:this|that)\b[ \t]*(?:[?.!,;:)]|$|one\b|ones\b)")
# Words that carry no subject: grammar, politeness, and vague nouns. With only these (and verbs), a
# question has no subject of its own ("and how do I cancel?").
_NO_SUBJECT = frozenset(
    """a an and also again afterwards after all am any anything are as at be been but by can could do does
    done else for from get got have how i if in instead into is just later let me more my need next no not
    now of ok okay on once or please same should so some still than thanks the then there thing things to
    too up us want was way we what when where which while who why will with would yes you your about
    possible way ways again also new old existing another other
    endpoint endpoints api route go out
    """.split()
)
# After one of these, an action word is a thing: "how do I create *a list*?", "the update".
_DETERMINERS = frozenset("a an the my our your their its each every new".split())
# Path segments that name no resource: versions, API roots, format suffixes.
_NOT_A_RESOURCE = re.compile(r"^(?:v\d+(?:\.\d+)*|\d[\d-]*|api|rest|json|xml|me|@me|graphql)$")


def words(text: str) -> list[str]:
    """Lower-case words of `text` (its first 2,000 characters)."""
    return _WORD.findall(text[:_MAX_SCANNED_CHARS].lower())


def needs_referent(question: str) -> bool:
    """Whether a question leans on the conversation: a pronoun standing for something said, or no subject."""
    found = words(question)
    if _PRONOUNS.intersection(found):
        return True
    if _STANDALONE_DEMONSTRATIVE.search(question[:_MAX_SCANNED_CHARS].lower()):
        return True
    return not any(w not in _NO_SUBJECT and w not in _DEMONSTRATIVES and not is_action_word(w) for w in found)


def _main_verb_index(found: list[str]) -> int:
    """The position of a question's main verb: the first word after "I", "we" or "to" ("how do I *open*..."); -1."""
    return next(
        (i for i in range(1, len(found)) if found[i - 1] in _SUBJECT_PRONOUNS and found[i] not in _NO_SUBJECT), -1
    )


def main_action(question: str) -> str:
    """The question's main verb ("mute" in "how do I mute a user?"), or ""."""
    found = words(question)
    index = _main_verb_index(found)
    return found[index] if index >= 0 else ""


def _subject_words(text: str) -> list[str]:
    """The words of `text` that name things: no grammar, no verbs, no pronouns, in order, without repeats.

    Besides the verbs the intent prior knows, the question's main verb goes: the first word after "I", "we" or
    "to" ("how do I *open* a pull request?"), so "open" cannot pull "how do I close it?" to `reopenPullRequest`.
    """
    seen: dict[str, None] = {}
    found = words(identifier_words(text))
    main_verb = _main_verb_index(found)
    for index, word in enumerate(found):
        if index != main_verb and (
            len(word) > 1
            and word not in _NO_SUBJECT
            and word not in _PRONOUNS
            and word not in _DEMONSTRATIVES
            and (not is_action_word(word) or (index > 0 and found[index - 1] in _DETERMINERS))
            and not _NOT_A_RESOURCE.match(word)
        ):
            seen.setdefault(word)
    return list(seen)


def _resource_text(item: Mapping[str, str]) -> str:
    """The text naming what a cited item acts on: its path's last resources, GraphQL field, request name."""
    kind = item.get("kind", "")
    if kind == "graphql":
        # A mutation is named verb first (`reopenPullRequest`); what it acts on is the rest.
        field = identifier_words(item.get("field", "")).split()
        return " ".join(field[1:] if item.get("type") == "mutation" and len(field) > 1 else field)
    if kind == "postman":
        return item.get("name", "")
    if kind == "doc_section":
        return item.get("heading", "")
    path = item.get("path", "") or item.get("url", "")
    path = re.sub(r"^[a-z]+://[^/]*", "", path[:_MAX_SCANNED_CHARS]).split("?", 1)[0]
    segments = [s for s in path.replace(".json", "").split("/") if s and not is_placeholder(s)]
    resources = [s for s in segments if not _NOT_A_RESOURCE.match(s.lower())]
    # The last one names the thing (`/store/order`, `/Accounts/{sid}/Messages`); earlier ones are containers,
    # unless the last is an action on the one before (`/pet/findByStatus`).
    if len(resources) > 1 and any(is_action_word(w) for w in words(identifier_words(resources[-1]))):
        return " ".join(resources[-2:])
    return " ".join(resources[-1:])


def _named_after(verb: str, item: Mapping[str, str]) -> bool:
    """Whether what a cited item acts on is named after `verb` (`/bans/{user_id}` after "ban").

    A Postman request is read by its URL: its name is a verb phrase ("Create a list") whatever the URL says.
    """
    named = _resource_text({"path": item.get("url", "")}) if item.get("kind") == "postman" else _resource_text(item)
    return bool(set(tokenize(verb)) & set(tokenize(named)))


def topic(question: str, previous_topic: str, cited: Iterable[Mapping[str, str]]) -> str:
    """What a turn was about, for the next question's "it": the things its question names.

    A question that leaned on the conversation ("and how do I cancel it?") keeps the topic it leaned on;
    one that names nothing falls back to what its best citation acts on. Verbs are left out on purpose, so
    "add" in "how do I add a new pet?" cannot pull the follow-up "and how do I delete one?" back to `POST /pet`.
    """
    found = _subject_words(question)
    if previous_topic and needs_referent(question):
        found = [*_subject_words(previous_topic), *found]
    best = next(iter(cited), None)
    if best is not None:
        # The verb stays when the answer's operation is named after it: "schedule a message" ->
        # `chat.scheduleMessage`, "ban a user" -> `/bans/{user_id}`; "one" is then a scheduled message, a ban.
        verb = main_action(question)
        if verb and verb not in found and _named_after(verb, best):
            found = [verb, *found]
        if not found:
            found = _subject_words(_resource_text(best))
    return " ".join(found[:MAX_TOPIC_WORDS])


def follow_up_query(question: str, previous_topic: str, previous_action: str = "") -> str:
    """The search text for a question asked after a turn about `previous_topic`.

    The question alone when it stands on its own; with the topic added when it leans on the conversation, and
    the previous action too when "that" or "this" stands for it ("how do I undo that?" after muting a user).
    """
    if not needs_referent(question):
        return question
    refers_to_action = (
        bool(previous_action)
        and previous_action not in previous_topic.split()  # the topic may keep the verb already (`topic`)
        and _STANDALONE_DEMONSTRATIVE.search(question[:_MAX_SCANNED_CHARS].lower()) is not None
    )
    return " ".join(part for part in (question, previous_action if refers_to_action else "", previous_topic) if part)


def remembered_item(item: Mapping[str, str]) -> str:
    """A cited item as a thread remembers it (JSON text; "" when too long to keep whole)."""
    text = json.dumps(dict(item), sort_keys=True)
    return text if len(text) <= MAX_BEST_CHARS else ""


def _recalled_item(text: str) -> dict[str, str]:
    if not text or len(text) > MAX_BEST_CHARS:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _address(item: Mapping[str, str]) -> str:
    """Where an operation lives (its path, a Postman request's URL without the query); "" for anything else."""
    kind = item.get("kind", "")
    if kind == "operation":
        return item.get("path", "")
    if kind == "postman":
        return item.get("url", "").split("?", 1)[0]
    return ""


def _item_of(address: str, collection: str) -> bool:
    """Whether `address` is one item of `collection`: the collection's path plus one placeholder segment.

    `/store/order/{orderId}` of `/store/order`; Twilio's `.../Calls/{Sid}.json` of `.../Calls.json`.
    """
    parent, _, last = address.rpartition("/")
    suffix = item_suffix(last)
    return bool(collection) and suffix is not None and parent + suffix == collection


def rerank_follow_up(question: str, previous_best: str, items: Sequence[RetrievedItem]) -> list[RetrievedItem]:
    """Results for a follow-up, with the previous answer's best item last if it does not do what is asked.

    "And how do I cancel it?" after `POST /store/order`: the user has that operation already and wants a sibling.
    When the question names nothing of its own, a sibling that does what is asked comes first: on the very same
    path ("and list the ones I sent?" after `POST .../Messages.json` is `GET .../Messages.json`: one path,
    another method is how REST names the other actions on the same thing), else on one item of that path
    ("how can I look it up later?" after `POST /store/order` is `GET /store/order/{orderId}`: what a create
    made lives under the collection it was posted to; not when the question asks for a list).
    """
    previous = _recalled_item(previous_best)
    # Only a stated action counts: "what does it return?" reads as "read", yet asks about the same operation.
    stated = any(is_action_word(w) for w in words(question))
    intent = question_intent(question)
    wanted = intent.actions if stated else frozenset()
    if not previous or not wanted:
        return list(items)
    answered = [i for i in items if i.document.item == previous and not wanted & document_intents(i.document)]
    # The previous operation does what is asked ("and how do I get it?" after a GET): no sibling is wanted.
    previous_serves = any(i.document.item == previous and i not in answered for i in items)
    # Only when the question names nothing of its own: "how do I add tracks to it?" is about the tracks.
    address = "" if previous_serves or _subject_words(question) else _address(previous)
    doers = (
        [i for i in items if i.document.item != previous and wanted & document_intents(i.document)] if address else []
    )
    same_path = [i for i in doers if _address(i.document.item) == address]
    # "and list them?" wants the collection back, which one item of it is not.
    items_of = [] if intent.wants_list else [i for i in doers if _item_of(_address(i.document.item), address)]
    siblings = (same_path or items_of)[:1]
    return siblings + [i for i in items if i not in answered and i not in siblings] + answered
