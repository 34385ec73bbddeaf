from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.errors import InvalidSpecError
from core.models import ApiSpec, ItemKind, Operation, SpecFormat
from core.parsing.markdown import find_endpoints, parse_markdown

HACKER_NEWS = "hackernews_api.md"

DOC = """Intro before any heading.

# Widgets API #

All calls go to `https://api.widgets.test/v2/`.

## Widgets

Widgets live under `/v2/widgets/<id>.json`. Example: https://api.widgets.test/v2/widgets/42.json?pretty=1.

```bash
# Not a heading: a shell comment in a code block
curl -X DELETE https://api.widgets.test/v2/widgets/42
```

~~~
## Not a heading either
~~~

### Creating widgets

Send POST `/v2/widgets` with a JSON body, or **PATCH** `/v2/widgets/{id}` to change one.
See [the guide](https://docs.widgets.test/v2/guide.json) and https://blog.widgets.test/post.

### Listing widgets

GET https://api.widgets.test/v2/widgets lists them; `/v2/widgets` without a verb is the same endpoint.

## Errors

No endpoints here.

## Errors
"""


@pytest.fixture(scope="module")
def example() -> ApiSpec:
    return parse_markdown(DOC, title="fallback")


def _section(spec: ApiSpec, name: str) -> Operation:
    return next(op for op in spec.operations if op.name == name)


def test_headings_become_sections(example: ApiSpec) -> None:
    assert example.format is SpecFormat.MARKDOWN
    assert example.title == "Widgets API"
    assert [op.name for op in example.operations] == [
        "Widgets API",
        "Widgets",
        "Creating widgets",
        "Listing widgets",
        "Errors",
        "Errors (2)",
    ]
    assert all(op.kind is ItemKind.DOC_SECTION for op in example.operations)
    assert len({op.key for op in example.operations}) == len(example.operations)
    assert example.description.startswith("Intro before any heading.")


def test_section_text_includes_subsections(example: ApiSpec) -> None:
    widgets = _section(example, "Widgets")
    assert "Creating widgets" in widgets.description and "Listing widgets" in widgets.description
    assert "Errors" not in widgets.description
    assert "# Not a heading: a shell comment" in widgets.description  # code blocks kept
    assert _section(example, "Listing widgets").tags == ("Widgets API", "Widgets")


def test_section_endpoints(example: ApiSpec) -> None:
    widgets = _section(example, "Widgets")
    assert (widgets.method, widgets.path) == ("GET", "/v2/widgets/<id>.json")
    assert widgets.item() == {
        "kind": "doc_section",
        "heading": "Widgets",
        "method": "GET",
        "path": "/v2/widgets/<id>.json",
    }
    creating = _section(example, "Creating widgets")
    assert (creating.method, creating.path) == ("POST", "/v2/widgets")
    listing = _section(example, "Listing widgets")
    assert (listing.method, listing.path, listing.servers) == ("GET", "/v2/widgets", ("https://api.widgets.test",))
    # The base URL is not an endpoint, and a section without endpoints of its own gets no path.
    assert _section(example, "Widgets API").path == ""
    assert _section(example, "Errors").item() == {"kind": "doc_section", "heading": "Errors"}


def test_distinct_endpoints() -> None:
    found = {(e.method, e.path) for e in find_endpoints(DOC)}
    # The example URL .../widgets/42.json is an instance of /v2/widgets/<id>.json; links and the blog
    # URL are not API calls; the curl line in the code block is.
    assert found == {
        ("GET", "/v2/widgets/<id>.json"),
        ("DELETE", "/v2/widgets/42"),
        ("POST", "/v2/widgets"),
        ("PATCH", "/v2/widgets/{id}"),
        ("GET", "/v2/widgets"),
    }


def test_servers(example: ApiSpec) -> None:
    assert example.servers == ("https://api.widgets.test",)
    spec = parse_markdown("# API\n\nBase URL: `https://api.example.test/v1`\n\n## Users\n\nGET `/users/{id}`\n")
    assert spec.servers == ("https://api.example.test/v1",)
    assert (_section(spec, "Users").method, _section(spec, "Users").path) == ("GET", "/users/{id}")


def test_credentials_in_example_urls_are_not_kept() -> None:
    spec = parse_markdown("# API\n\n## Users\n\n`GET https://ada:s3cr3t@api.example.test/v1/users`\n")
    assert spec.servers == ("https://api.example.test",)
    assert "s3cr3t" not in json.dumps([op.servers for op in spec.operations])


def test_endpoint_in_heading() -> None:
    spec = parse_markdown("## DELETE /users/:id\n\nRemoves a user.\n")
    (op,) = spec.operations
    assert (op.name, op.method, op.path, op.summary) == ("DELETE /users/:id", "DELETE", "/users/:id", "Removes a user.")
    assert spec.title == "API documentation"


def test_no_headings_and_empty() -> None:
    spec = parse_markdown("Call `/ping` to check.", title="Ping API")
    (op,) = spec.operations
    assert (spec.title, op.name, op.path) == ("Ping API", "Ping API", "/ping")
    with pytest.raises(InvalidSpecError):
        parse_markdown("  \n")


# The Hacker News doc's traps in a few lines: endpoints only in prose and backticks, each written once
# without `.json` (or as a folder with a trailing slash) and again as a full example URL with `.json`.
NEWS_DOC = """# Tiny News API

URIs are prefixed with `https://news.example.test/v0/`. There is currently no rate limit.

## Items

Items live under `/v0/item/<id>.json`.

For example: https://news.example.test/v0/item/8863.json?print=pretty

## Users

Users live under `/v0/user/`.

For example: https://news.example.test/v0/user/jl.json?print=pretty

## Max Item ID

The current largest item id is at `/v0/maxitem`.

Example: https://news.example.test/v0/maxitem.json?print=pretty

## Top stories

Up to 500 top and new stories are at `/v0/topstories` and `/v0/newstories`.

Example: https://news.example.test/v0/topstories.json?print=pretty
"""


def test_prose_only_endpoints_with_and_without_json_are_counted_once() -> None:
    endpoints = find_endpoints(NEWS_DOC)
    assert [(e.method, e.path) for e in endpoints] == [
        ("GET", "/v0/item/<id>.json"),
        ("GET", "/v0/user/"),
        ("GET", "/v0/maxitem"),
        ("GET", "/v0/topstories"),
        ("GET", "/v0/newstories"),
    ]
    spec = parse_markdown(NEWS_DOC, title="news")
    assert spec.servers == ("https://news.example.test",)
    assert spec.security_schemes == () and spec.security == ()
    paths = {op.name: (op.method, op.path) for op in spec.operations}
    assert paths == {
        "Tiny News API": ("", ""),
        "Items": ("GET", "/v0/item/<id>.json"),
        "Users": ("GET", "/v0/user/"),
        "Max Item ID": ("GET", "/v0/maxitem"),
        "Top stories": ("GET", "/v0/topstories"),
    }
    assert "/v0/newstories" in _section(spec, "Top stories").description


# --- the real Hacker News doc -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hn_text(specs_dir: Path) -> str:
    return (specs_dir / HACKER_NEWS).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def hacker_news(hn_text: str) -> ApiSpec:
    return parse_markdown(hn_text, title="hackernews_api")


def _ignoring_placeholders(path: str) -> str:
    """The eval's path comparison: `{id}`/`<id>` placeholders and a trailing `.json` ignored."""
    path = re.sub(r"\.json$", "", path)
    return re.sub(r"\{[^}]*\}|<[^>]*>", "", path).rstrip("/")


def test_hacker_news_sections(hacker_news: ApiSpec) -> None:
    assert hacker_news.title == "Hacker News API"
    assert hacker_news.servers == ("https://hacker-news.firebaseio.com",)
    names = [op.name for op in hacker_news.operations]
    for heading in (
        "Items",
        "Users",
        "Live Data",
        "Max Item ID",
        "New, Top and Best Stories",
        "Ask, Show and Job Stories",
        "Changed Items and Profiles",
    ):
        assert heading in names
    paths = {op.name: (op.method, op.path) for op in hacker_news.operations}
    assert paths["Items"] == ("GET", "/v0/item/<id>.json")
    assert paths["Users"] == ("GET", "/v0/user/")
    assert paths["Max Item ID"] == ("GET", "/v0/maxitem")
    assert paths["URI and Versioning"] == ("", "")  # only the base URL is named there
    assert paths["Live Data"] == ("", "")  # its endpoints belong to its subsections


def test_hacker_news_endpoints(hn_text: str) -> None:
    endpoints = find_endpoints(hn_text)
    assert len(endpoints) == 10
    assert {e.method for e in endpoints} == {"GET"}
    assert {_ignoring_placeholders(e.path) for e in endpoints} == {
        "/v0/item",
        "/v0/user",
        "/v0/maxitem",
        "/v0/topstories",
        "/v0/newstories",
        "/v0/beststories",
        "/v0/askstories",
        "/v0/showstories",
        "/v0/jobstories",
        "/v0/updates",
    }


def test_hacker_news_gold_sections(hacker_news: ApiSpec, eval_dir: Path) -> None:
    questions = [json.loads(line) for line in (eval_dir / "dev.jsonl").read_text().splitlines()]
    for question in (q for q in questions if q["spec"] == HACKER_NEWS):
        for gold in question["gold"]:
            section = _section(hacker_news, gold["heading"])
            # The eval checks that the gold heading mentions the gold path.
            assert _ignoring_placeholders(gold["path"]) in section.description


def test_an_unclosed_ipv6_bracket_in_a_url_is_not_an_endpoint():
    spec = parse_markdown("# API\n\n## Get things\n\n`GET http://[` and `GET https://api.example.com/things`\n")
    assert [op.path for op in spec.operations if op.path] == ["/things"]
