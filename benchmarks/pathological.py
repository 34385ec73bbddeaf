"""Time the inputs issue 8 measured against a checkout of the code, each in a fresh process, killed after 60 s.

    .venv/bin/python benchmarks/pathological.py [ROOT]

ROOT is the checkout to import `core` and `bot` from (default: this one). To compare with the code before the
fixes: `git archive 7027b27 | tar -x -C /tmp/before` and pass `/tmp/before`. Only the call is timed, not imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POSTMAN = """from core.parsing.postman import parse_postman
def collection(url, body=''):
    body = {'mode': 'raw', 'raw': body, 'options': {'raw': {'language': 'json'}}}
    request = {'method': 'POST', 'url': {'raw': url}, 'body': body}
    return {'info': {'name': 'x', '_postman_id': 'x'}, 'variable': [{'key': 'base', 'value': 'b'}],
            'item': [{'name': 'r', 'request': request}]}"""
IDENTIFIERS = """from core.retrieval import _LexicalIndex
from core.documents import build_documents
from core.models import ApiSpec, Operation, ItemKind, SpecFormat
operation = Operation(ItemKind.OPERATION, 'GET', '/v1/{a}{b}{c}{d}{e}{f}{g}{h}/z')
spec = ApiSpec(SpecFormat.OPENAPI3, 't', operations=(operation,))
index = _LexicalIndex([('t', d) for d in build_documents(spec)])"""
SPEC_LIST = "from core.generation import asks_for_spec_list"
LOADER = "from core.parsing.loader import _parse_text\nfrom core.errors import InvalidSpecError"
MARKDOWN = "from core.parsing.markdown import parse_markdown"
SLACK = "from bot.slack_app.render import render_markdown"
CASES = {  # name: (setup, the timed call)
    "spec-list question, 182 chars": (SPEC_LIST, "asks_for_spec_list('show ' + 'all the '*22 + 'x')"),
    "spec-list question, 300 chars": (SPEC_LIST, "asks_for_spec_list('show ' + 'all the '*37 + 'x')"),
    "identifier match: 4,000-char quoted path vs 8 adjacent placeholders": (
        IDENTIFIERS,
        "index.identifier_ranking('what does `/v1/' + 'a'*3990 + '/y` return?')",
    ),
    "format detection: 100 KB of blank lines": (
        LOADER,
        "try: _parse_text('x.txt', '\\n'*100000 + 'x')\nexcept InvalidSpecError: pass",
    ),
    "format detection: 300 KB of blank lines": (
        LOADER,
        "try: _parse_text('x.txt', '\\n'*300000 + 'x')\nexcept InvalidSpecError: pass",
    ),
    "Markdown: one 18 KB line of backticked spans": (MARKDOWN, "parse_markdown('# T\\n' + 'GET `/a` '*2000)"),
    "Markdown: one 150 KB line of backticked spans": (MARKDOWN, "parse_markdown('# T\\n' + 'GET `/a` '*17000)"),
    "Markdown: heading line with 20 KB of spaces": (MARKDOWN, "parse_markdown('# a' + ' '*20000 + 'x\\n`/v1/a`')"),
    "Postman: `{{` + 3 KB of spaces in a URL": (POSTMAN, "parse_postman(collection('{{' + ' '*3000 + 'x'))"),
    "Postman: JSON body with 100 KB of blank lines": (
        POSTMAN,
        "parse_postman(collection('https://a.io/x', '\\n'*100000 + 'x'))",
    ),
    "Slack rendering: 10,000 backticks": (SLACK, "render_markdown('a ' + '`'*10000)"),
    "Slack rendering: heading with 5 KB of spaces": (SLACK, "render_markdown('# a' + ' '*5000 + 'x')"),
}

def main() -> None:
    """Print one `case | seconds` line per case."""
    root = sys.argv[1] if len(sys.argv) > 1 else str(REPO)
    for name, (setup, call) in CASES.items():
        program = setup + "\nimport time\nt0 = time.perf_counter()\n" + call + "\nprint(time.perf_counter() - t0)"
        env = {"PYTHONPATH": root, "HF_HUB_OFFLINE": "1"}
        try:
            done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            result = "> 60 s (killed)"
        else:
            lines = done.stdout.strip().splitlines()
            result = f"{float(lines[-1]):.3f} s" if done.returncode == 0 and lines else "error: " + done.stderr[-300:]
        print(f"{name} | {result}", flush=True)


if __name__ == "__main__":
    main()
