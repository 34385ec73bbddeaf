"""Auth questions end to end on the real specs and the bundled example: real model, embedded Chroma, the real
ranking path (`Assistant.search`, which the evaluation uses) and the answers users get, retrieval-only and
generated through the real Groq SDK against the local fake Groq."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from core.actions import AskQuestion, Origin, PathAttachment, UploadSpec
from core.answers import AnswerKind, CodeBlock
from core.assistant import Assistant
from core.bootstrap import build_assistant
from core.config import Settings
from tests.fake_groq import Reply, start_fake_groq

TEAM = Origin("slack", "T1", channel="C1", user="U1")


@dataclass(frozen=True)
class AuthCase:
    """A hand-written auth question: the scheme(s) acceptable at rank 1, and text the answer must show."""

    spec: str
    question: str
    schemes: tuple[str, ...]
    shows: tuple[str, ...] = ()


# Questions about an API's auth in general, across the corpus: the scheme comes first, with the scopes where the
# spec declares them. Written for this check; none is taken from the evaluation sets.
HAND_WRITTEN = [
    AuthCase("stripe_openapi3_2023-09.yaml", "How do I authenticate to Stripe, basic auth or bearer?",
             ("basicAuth", "bearerAuth")),
    AuthCase("stripe_openapi3_2023-09.yaml", "can I send my secret key as a bearer token?", ("bearerAuth",),
             ("`Authorization: Bearer <token>`",)),
    AuthCase("stripe_openapi3_2023-09.yaml", "what credentials do Stripe API calls need?", ("basicAuth", "bearerAuth")),
    AuthCase("twilio_api_v2010_openapi3.json", "what credentials does the Twilio API take?", ("accountSid_authToken",),
             ("HTTP Basic auth",)),
    AuthCase("twilio_api_v2010_openapi3.json", "how do I authenticate with my account SID and auth token?",
             ("accountSid_authToken",)),
    AuthCase("spotify_web_api_openapi3.yaml", "which OAuth scopes does the Spotify API have?", ("oauth_2_0",),
             ("`playlist-read-private`", "https://accounts.spotify.com/authorize")),
    AuthCase("spotify_web_api_openapi3.yaml", "what scopes do I need to create a playlist?", ("oauth_2_0",),
             ("with scopes `playlist-modify-public`, `playlist-modify-private`",)),
    AuthCase("petstore_openapi3.yaml", "does the petstore use an api key or oauth?", ("api_key", "petstore_auth")),
    AuthCase("petstore_openapi3.yaml", "what OAuth scopes does the petstore have?", ("petstore_auth",),
             ("`write:pets`", "`read:pets`")),
    AuthCase("petstore_openapi3.yaml", "what token do I need to update a pet?", ("petstore_auth",),
             ("with scopes `write:pets`, `read:pets`",)),
    AuthCase("discord_api_v10_openapi3.1.json", "how do I send my bot token to discord?", ("BotToken",),
             ("API key in the `Authorization` header",)),
    AuthCase("discord_api_v10_openapi3.1.json", "what OAuth2 scopes can my Discord app ask for?", ("OAuth2",),
             ("Scopes include",)),
    AuthCase("slack_web_api_swagger2.json", "what kind of token does the Slack Web API take?", ("slackAuth",)),
    AuthCase("twitter_api_v2.postman_collection.json", "what token does the twitter collection use?", ("bearer",),
             ("`{{bearer_token}}`",)),
    AuthCase("twitter_api_v2.postman_collection.json", "which requests need OAuth 1.0a user context auth?",
             ("oauth1",), ("Needed by the best matching operations",)),
]  # fmt: skip

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def corpus(
    specs_dir: Path, embedder: object, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Assistant, dict[str, str]]]:
    """One assistant with every spec the cases name (and GitHub's GraphQL schema) in one workspace."""
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("auth") / "data",
        upload_rate_limit_burst=20,  # the limits are not under test here
        rate_limit_burst=100,
        _env_file=None,
    )
    async with build_assistant(settings, embedder=embedder) as assistant:  # type: ignore[arg-type]
        names = {}
        for filename in sorted({case.spec for case in HAND_WRITTEN} | {"github_graphql_schema.graphql"}):
            report = await assistant.ingest(UploadSpec(TEAM, PathAttachment(specs_dir / filename)))
            names[filename] = report.record.name
        yield assistant, names


@pytest.mark.parametrize("case", HAND_WRITTEN, ids=lambda case: case.question)
async def test_hand_written_auth_questions_get_the_scheme_first(
    corpus: tuple[Assistant, dict[str, str]], case: AuthCase
) -> None:
    assistant, names = corpus
    items = await assistant.search(TEAM, case.question, spec=names[case.spec], limit=10)
    assert items[0].document.item.get("kind") == "auth", [i.document.title for i in items[:3]]
    assert items[0].document.item["scheme"] in case.schemes, [i.document.title for i in items[:3]]
    answer = await assistant.ask(AskQuestion(TEAM, case.question, spec=names[case.spec]))
    text = answer.as_markdown()
    assert answer.kind is AnswerKind.RETRIEVAL
    assert f"authenticates with **{items[0].document.item['scheme']}**" in text
    for shown in case.shows:
        assert shown in text


async def test_slack_chat_post_message_scopes_reach_the_answer(corpus: tuple[Assistant, dict[str, str]]) -> None:
    assistant, names = corpus
    question = "what token and scopes does chat.postMessage need?"
    slack = names["slack_web_api_swagger2.json"]
    for spec in (slack, None):  # scoped to Slack, and across the whole workspace
        items = await assistant.search(TEAM, question, spec=spec, limit=10)
        assert [i.document.item for i in items[:2]] == [
            {"kind": "operation", "method": "POST", "path": "/chat.postMessage"},
            {"kind": "auth", "scheme": "slackAuth"},
        ]
    answer = await assistant.ask(AskQuestion(TEAM, question))
    text = answer.as_markdown()
    assert (
        "Auth: OAuth 2.0 access token as a Bearer token (`slackAuth`) with scopes `chat:write:user`, `chat:write:bot`"
        in text
    )
    assert "slack_web_api_swagger2: Auth: slackAuth" in text  # cited among the sources
    [code] = [b for b in answer.blocks if isinstance(b, CodeBlock)]
    assert '"Authorization: Bearer $API_TOKEN"' in code.code and "chat:write:user, chat:write:bot" in code.code


async def test_a_graphql_schema_without_auth_says_so(corpus: tuple[Assistant, dict[str, str]]) -> None:
    assistant, names = corpus
    github = names["github_graphql_schema.graphql"]
    answer = await assistant.ask(AskQuestion(TEAM, "how do I authenticate to the GitHub GraphQL API?", spec=github))
    assert f"`{github}` does not describe its authentication" in answer.as_markdown()


# ---- the bundled example, retrieval-only and generated ---------------------------------------------------


async def test_what_auth_does_this_need_on_the_bundled_example(
    tmp_path: Path, embedder: object, example_spec: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]
    async with build_assistant(settings, embedder=embedder) as assistant:  # type: ignore[arg-type]
        await assistant.ingest(UploadSpec(TEAM, PathAttachment(example_spec), "bookshop"))
        for question in ("What auth does this need?", "how do I authenticate?", "where does my API key go?"):
            items = await assistant.search(TEAM, question)
            assert items[0].document.item == {"kind": "auth", "scheme": "apiKey"}, question
        answer = (await assistant.ask(AskQuestion(TEAM, "What auth does this need?"))).as_markdown()
        assert "`bookshop` authenticates with **apiKey**: API key in the `X-Api-Key` header." in answer
        # The catalogue is public (`security: []`): its snippet sends no key.
        books = await assistant.ask(AskQuestion(TEAM, "do I need a key to list books?"))
        assert "Auth: none required" in books.as_markdown()
        [code] = [b for b in books.blocks if isinstance(b, CodeBlock)]
        assert "X-Api-Key" not in code.code


async def test_generated_answers_get_the_scheme_and_scopes(tmp_path: Path, embedder: object, specs_dir: Path) -> None:
    async with start_fake_groq() as fake:
        settings = Settings(  # type: ignore[call-arg]
            data_dir=tmp_path / "data",
            groq_api_key="gsk_test_key_not_real",
            groq_base_url=fake.base_url,
            groq_timeout_seconds=2.0,
            groq_max_retries=0,
            _env_file=None,
        )
        async with build_assistant(settings, embedder=embedder) as assistant:  # type: ignore[arg-type]
            await assistant.ingest(UploadSpec(TEAM, PathAttachment(specs_dir / "slack_web_api_swagger2.json")))
            fake.script(Reply("Use a `slackAuth` OAuth token [2] with `chat:write:bot` to call it [1]."))
            answer = await assistant.ask(AskQuestion(TEAM, "what token and scopes does chat.postMessage need?"))
            [request] = fake.requests
            prompt = request.last_user
            # The operation (its auth right under its name) and then the scheme it needs, numbered for citation.
            operation_item = prompt.split('label="POST /chat.postMessage">')[1].split("</spec-data>")[0]
            assert operation_item.splitlines()[2] == (
                "Auth: OAuth 2.0 access token as a Bearer token (`slackAuth`) with scopes "
                "`chat:write:user`, `chat:write:bot`"
            )
            assert '<spec-data item="2" spec="slack_web_api_swagger2" label="Auth: slackAuth">' in prompt
            assert "- `POST /chat.postMessage` with scopes `chat:write:user`, `chat:write:bot`" in prompt
            assert answer.kind is AnswerKind.GENERATED
            assert [c.label for c in answer.citations] == ["Auth: slackAuth", "POST /chat.postMessage"]
            assert "chat:write:bot" in answer.as_markdown()
