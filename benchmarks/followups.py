"""Follow-up accuracy on evaluation/followups*.jsonl (issue 12, section 1).

Run: `.venv/bin/python -m benchmarks.followups [--specs ../shared/specs]`. Prints one line per file (the new
way of searching follow-ups next to the old one, both measured in this run) and the pairs it got wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from core.bootstrap import build_assistant
from core.config import Settings
from core.logs import configure_logging
from evaluation.followups import FOLLOWUPS, load_pairs, run_followup_evaluation

HELDOUT = FOLLOWUPS.with_name("followups_heldout.jsonl")
FRESH = FOLLOWUPS.with_name("followups_fresh.jsonl")


async def main(specs: Path, files: list[Path]) -> None:
    """Evaluate the follow-up files on a throwaway data dir."""
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), _env_file=None)  # type: ignore[call-arg]
        async with build_assistant(settings) as assistant:
            for path in files:
                result = await run_followup_evaluation(assistant, load_pairs(path), specs, log=lambda _: None)
                print(f"{path.name}: {result.summary()}")
                outcomes = zip(result.pairs, result.follow_up_right, result.follow_up_cited, strict=True)
                for pair, right, cited in outcomes:
                    if not right:
                        print(f"  miss {pair.id}: {pair.question!r} -> {cited}", file=sys.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--specs", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "specs")
    parser.add_argument("--pairs", type=Path, nargs="+", default=[FOLLOWUPS, HELDOUT, FRESH], help="files to score")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.specs, arguments.pairs))
