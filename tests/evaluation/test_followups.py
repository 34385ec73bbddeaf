"""The follow-up pair files in evaluation/ are well-formed: enough pairs, a different answer wanted for the
follow-up than for its first question, and every gold item a real item of its spec."""

from evaluation.followups import FOLLOWUPS, load_pairs
from evaluation.retrieval import matches
from tests.evaluation.test_heldout import spec_items

FILES = (FOLLOWUPS, FOLLOWUPS.with_name("followups_heldout.jsonl"), FOLLOWUPS.with_name("followups_fresh.jsonl"))


def test_follow_up_files_are_well_formed():
    dev, heldout, fresh = (load_pairs(path) for path in FILES)
    assert len(dev) >= 30 and len(heldout) >= 15 and len(fresh) >= 15
    pairs = dev + heldout + fresh
    assert len({p.id for p in pairs}) == len(pairs)
    assert len({(p.first.lower(), p.question.lower()) for p in pairs}) == len(pairs)
    for pair in pairs:
        assert not any(matches(g, first) for g in pair.gold for first in pair.first_gold), pair.id


def test_every_follow_up_gold_item_is_a_document_of_its_spec(specs_dir):
    pairs = [p for path in FILES for p in load_pairs(path)]
    items = spec_items(specs_dir, {p.spec for p in pairs})
    for pair in pairs:
        for gold in (*pair.first_gold, *pair.gold):
            assert any(matches(item, gold) for item in items[pair.spec]), (pair.id, gold)
