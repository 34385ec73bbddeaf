"""The held-out question file in evaluation/ is well-formed and every gold item exists in its spec."""

from collections import Counter
from pathlib import Path

from core.documents import build_documents
from core.parsing.loader import load_spec
from evaluation.retrieval import load_questions, matches

HELDOUT = Path(__file__).resolve().parents[2] / "evaluation" / "heldout.jsonl"
EXTENSIONS = frozenset({"json", "yaml", "graphql", "md"})


def test_heldout_questions_are_unique_and_cover_every_style():
    questions = load_questions(HELDOUT)
    assert len(questions) >= 30
    assert len({q.id for q in questions}) == len(questions)
    assert len({q.question.lower() for q in questions}) == len(questions)
    assert set(Counter(q.style for q in questions)) == {"natural", "paraphrase", "vague", "identifier", "auth"}


def spec_items(specs_dir: Path, specs: set[str]) -> dict[str, list[dict[str, str]]]:
    """Every document item of each named spec file, by file name."""
    items: dict[str, list[dict[str, str]]] = {}
    for spec in sorted(specs):
        data = (specs_dir / spec).read_bytes()
        parsed = load_spec(spec, data, max_bytes=len(data) + 1, allowed_extensions=EXTENSIONS)
        items[spec] = [d.item for d in build_documents(parsed)]
    return items


def test_every_heldout_gold_item_is_a_document_of_its_spec(specs_dir):
    questions = load_questions(HELDOUT)
    items = spec_items(specs_dir, {q.spec for q in questions})
    for q in questions:
        for gold in q.gold:
            assert any(matches(item, gold) for item in items[q.spec]), (q.id, gold)


def test_heldout_shares_no_question_with_the_dev_files(eval_dir):
    heldout = {q.question.lower() for q in load_questions(HELDOUT)}
    for name in ("dev.jsonl", "dev_more.jsonl"):
        path = eval_dir / name
        if path.is_file():
            assert not heldout & {q.question.lower() for q in load_questions(path)}, name
