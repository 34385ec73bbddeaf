from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.discord_app.render import (
    MESSAGE_LIMIT,
    ZERO_WIDTH_SPACE,
    answer_markdown,
    code_block,
    defuse_mentions,
    render_answer,
    render_partial,
    split_message,
    thread_name,
)
from core.answers import Answer, AnswerKind, Citation, CodeBlock, TextBlock
from tests.core.test_pathological_inputs import bounded


def _balanced(chunk: str) -> bool:
    return sum(1 for line in chunk.split("\n") if line.lstrip().startswith("```")) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_message("hello\nworld") == ["hello\nworld"]
    assert split_message("   \n ") == []


def test_splits_between_lines_under_the_limit() -> None:
    text = "\n".join(f"line {i} " + "x" * 50 for i in range(200))
    chunks = split_message(text)
    assert len(chunks) > 1
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert "\n".join(chunks) == text  # nothing lost, nothing added, no line cut


def test_long_code_block_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"print({i})  # " + "y" * 40 for i in range(150))
    text = "Intro paragraph.\n\n" + code_block("python", code) + "\n\nOutro."
    chunks = split_message(text)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert len(chunk) <= MESSAGE_LIMIT
        assert _balanced(chunk), chunk
    for chunk in chunks[1:-1]:
        assert chunk.startswith("```python\n") and chunk.endswith("\n```")
    body = [line for c in chunks for line in c.split("\n") if line.startswith("print(")]
    assert body == code.split("\n")  # every code line, once, in order
    assert chunks[-1].endswith("Outro.")


def test_fence_is_not_opened_at_the_very_end_of_a_message() -> None:
    text = "a" * 1950 + "\n```python\nprint(1)\n```"
    chunks = split_message(text)
    assert chunks[0] == "a" * 1950
    assert chunks[1] == "```python\nprint(1)\n```"


def test_line_longer_than_a_message_is_cut() -> None:
    words = " ".join(["word"] * 1000)
    chunks = split_message(words)
    assert all(len(c) <= MESSAGE_LIMIT for c in chunks)
    assert " ".join(c.strip() for c in chunks).split() == words.split()
    code = code_block("json", "z" * 5000)
    chunks = split_message(code)
    assert all(len(c) <= MESSAGE_LIMIT and _balanced(c) for c in chunks)
    assert "".join(re.sub(r"```(json)?\n?", "", c).replace("\n", "") for c in chunks) == "z" * 5000


def test_unterminated_fence_is_closed() -> None:
    assert split_message("```py\nprint(1)") == ["```py\nprint(1)\n```"]


@pytest.mark.parametrize("limit", [100, 333, 2000])
def test_random_mixture_respects_limit_and_fences(limit: int) -> None:
    parts = []
    for i in range(30):
        parts.append(f"Paragraph {i}: " + "lorem ipsum " * (i % 7 * 5))
        if i % 4 == 0:
            parts.append(code_block("bash", "\n".join(f"echo {j} " + "q" * (j * 7 % 90) for j in range(i * 3))))
    chunks = split_message("\n\n".join(parts), limit)
    assert all(len(c) <= limit and _balanced(c) for c in chunks)


def test_code_cannot_close_its_own_fence() -> None:
    block = code_block("python", 'x = """```"""')
    assert block.count("```") == 2
    assert ZERO_WIDTH_SPACE in block


def test_curl_snippets_are_highlighted_as_bash() -> None:
    assert code_block("curl", "curl x").startswith("```bash\n")
    assert code_block("py th<on>", "x").startswith("```python\n")


def test_mass_mentions_are_defused() -> None:
    text = defuse_mentions("hey @everyone and @here, mail me@example.com")
    assert "@everyone" not in text and "@here" not in text
    assert "@" + ZERO_WIDTH_SPACE + "everyone" in text
    assert defuse_mentions(text) == text


def test_answer_has_code_sources_and_notice() -> None:
    answer = Answer(
        AnswerKind.RETRIEVAL,
        (TextBlock("Use **POST /refunds**. @everyone"), CodeBlock("curl", "curl -X POST https://x")),
        (Citation("stripe", "POST /v1/refunds"), Citation("stripe", "Create_a_refund")),
        notice="Generation is off.",
    )
    markdown = answer_markdown(answer)
    assert "```bash\ncurl -X POST https://x\n```" in markdown
    assert markdown.index("**Sources**") > markdown.index("```bash")
    assert "`stripe`: Create\\_a\\_refund" in markdown
    assert markdown.endswith("-# Generation is off.")
    [message] = render_answer(answer)
    assert "@everyone" not in message


def test_partial_answer_has_cursor_and_closed_fence() -> None:
    [message] = render_partial("Here:\n```python\nprint(")
    assert message.endswith("\n```")
    assert "▌" in message


@pytest.mark.parametrize(("question", "name"), [
    ("how do I refund an order?", "how do I refund an order?"),
    ("<@123> can you check `POST /refunds` for <#456>?\nmore lines", "can you check POST /refunds for ?"),
    ("<@&789>", "API question"),
    ("   \n\n  list books  ", "list books"),
    ("@everyone look", "@\u200beveryone look"),
    ("x" * 300, "x" * 99 + "…"),
])
def test_thread_name(question: str, name: str) -> None:
    assert thread_name(question) == name


@settings(max_examples=60, deadline=None)
@given(st.builds(lambda unit, times: unit * times,
                 st.text(alphabet="<@&#!:at0123456789>` \nx", min_size=1, max_size=8), st.integers(500, 20_000)))
@example("<@" * 25_000)
@example("<a:" + "a" * 40_000)
def test_thread_name_is_bounded(question: str) -> None:
    name = bounded(thread_name, question)
    assert isinstance(name, str) and 1 <= len(name) <= 100
