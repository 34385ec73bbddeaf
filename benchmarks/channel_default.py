"""How far apart the best hits are when a channel's default spec does or does not cover a question.

    .venv/bin/python benchmarks/channel_default.py [--data DIR] [--out benchmarks/channel_default.json]

A channel with a default spec (`/api use NAME`) searches that spec first and falls through to the others only
when the default "clearly" does not cover the question (`core.assistant.DEFAULT_SPEC_MARGIN`). "Clearly" is
measured here on the real corpus questions: all nine corpus specs are indexed in one workspace, and every
question of `../shared/eval/dev.jsonl` and `dev_more.jsonl` is searched over the whole workspace once (fused
order, no LLM). For every spec D taken as the channel's default, the gap is the best fused score among the
other specs' hits minus the best among D's (D with no hit in the top `TOP` counts as an infinite gap):

- covered (D is the question's own spec, 131 cases): the gap should stay under the margin (stay on D);
- not covered (D is any of the other eight, 1048 cases): it should exceed it (search every spec).

For each candidate margin it prints how often each case goes the right way, and writes the gaps' quantiles.
`--data` keeps the indexed workspace between runs (indexing the nine specs takes a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.actions import Origin, PathAttachment, UploadSpec  # noqa: E402
from core.bootstrap import build_assistant  # noqa: E402
from core.channels import DEFAULT_SPEC_MARGIN, default_spec_gap  # noqa: E402
from core.config import Settings  # noqa: E402
from core.library import slugify_spec_name  # noqa: E402
from core.logs import configure_logging  # noqa: E402
from tests.corpus import eval_dir, specs_dir_or_exit  # noqa: E402

TOP = 50
MARGINS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
ORIGIN = Origin("cli", "bench")


def _questions() -> list[dict[str, Any]]:
    folder = eval_dir(os.environ)
    rows = []
    for name in ("dev.jsonl", "dev_more.jsonl"):
        path = folder / name
        if not path.is_file():
            sys.exit(f"{path} is missing: the evaluation questions are not public")
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def _quantiles(values: list[float]) -> dict[str, float]:
    finite = sorted(v for v in values if math.isfinite(v))
    pick = {q: finite[min(len(finite) - 1, int(q * len(finite)))] for q in (0.05, 0.25, 0.5, 0.75, 0.95)}
    return {f"p{int(q * 100)}": round(v, 3) for q, v in pick.items()} | {"infinite": len(values) - len(finite)}


async def main(data: Path) -> dict[str, Any]:
    configure_logging("WARNING")
    specs = specs_dir_or_exit(os.environ)
    questions = _questions()
    settings = Settings(
        data_dir=data, rerank_enabled=False, rate_limit_requests_per_minute=100_000, rate_limit_burst=10_000,
        max_specs_per_workspace=50, _env_file=None,
    )
    async with build_assistant(settings) as assistant:
        names = sorted({slugify_spec_name(q["spec"]) for q in questions})
        for question in questions:
            name = slugify_spec_name(question["spec"])
            if assistant.registry.get(ORIGIN.scope, name) is None:
                print(f"indexing {question['spec']}…", flush=True)
                await assistant.ingest(UploadSpec(ORIGIN, PathAttachment(specs / question["spec"]), name))
        scope = assistant.search_scope(ORIGIN.scope, None)
        covered: list[float] = []
        uncovered: list[float] = []
        for question in questions:
            embedding = await assistant.embedder.embed_query(question["question"])
            items = await assistant.retriever.search(scope, question["question"], TOP, query_embedding=embedding)
            own = slugify_spec_name(question["spec"])
            for default in names:
                gap = default_spec_gap(items, default)
                (covered if default == own else uncovered).append(gap)
    table = []
    for margin in MARGINS:
        stay = sum(g <= margin for g in covered) / len(covered)
        leave = sum(g > margin for g in uncovered) / len(uncovered)
        table.append({"margin": margin, "covered_stays": round(stay, 3), "uncovered_leaves": round(leave, 3)})
        print(f"margin {margin:.2f}: covered questions stay on the default {stay:6.1%}, "
              f"uncovered ones search every spec {leave:6.1%}")
    chosen = DEFAULT_SPEC_MARGIN
    result = {
        "questions": len(questions),
        "specs": len(names),
        "top": TOP,
        "covered_gaps": _quantiles(covered),
        "uncovered_gaps": _quantiles(uncovered),
        "margins": table,
        "chosen": {
            "margin": chosen,
            "covered_stays": round(sum(g <= chosen for g in covered) / len(covered), 3),
            "uncovered_leaves": round(sum(g > chosen for g in uncovered) / len(uncovered), 3),
        },
    }
    print(json.dumps(result["chosen"]))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/api-assistant-channel-default"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    outcome = asyncio.run(main(args.data))
    if args.out:
        args.out.write_text(json.dumps(outcome, indent=2) + "\n")
