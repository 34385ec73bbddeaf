"""Channel settings through the mock Slack API: `/api use` and specs private to one channel or DM."""

from __future__ import annotations

from typing import Any

from bot.slack_app import messages as slack_messages
from bot.slack_app.handlers import SlackBot
from bot.slack_app.render import MAKE_PRIVATE, MAKE_SHARED
from core import messages
from core.actions import ListSpecs, Origin
from core.bootstrap import build_assistant
from tests.bot.slack.conftest import SlackHttp, mention, message, serve_bot
from tests.bot.slack.mock_slack import MockSlack

WEATHER = b"""openapi: 3.0.0
info: {title: Weather API, version: "2.0"}
paths:
  /forecast:
    get:
      operationId: getForecast
      summary: Get the weather forecast for a city (temperature, rain, wind) for the next days
      responses: {"200": {description: the forecast}}
"""


async def run(slack_http: SlackHttp, mock_slack: MockSlack, text: str, channel: str = "C1", user: str = "U1") -> str:
    before = len(mock_slack.responses)
    await slack_http.command(text, mock_slack.response_url(), channel_id=channel, user_id=user)
    await mock_slack.wait_for("respond", count=before + 1)
    return str(mock_slack.responses[before].params["text"])


def upload(name: str, file: dict[str, Any], text: str = "<@UBOT>", **kwargs: Any) -> dict[str, Any]:
    return message(text, subtype="file_share", files=[file], **kwargs)


def click(action_id: str, name: str, channel: str, user: str, response_url: str) -> dict[str, Any]:
    return {
        "type": "block_actions", "team": {"id": "T1", "domain": "test"}, "user": {"id": user, "team_id": "T1"},
        "api_app_id": "A1", "token": "legacy", "trigger_id": "t1", "response_url": response_url,
        "channel": {"id": channel, "name": "secret"}, "container": {"type": "message", "message_ts": "6000.000200"},
        "message": {"ts": "6000.000200", "thread_ts": "6000.000100", "text": "Indexed"},
        "actions": [{"action_id": action_id, "block_id": "spec_visibility", "value": name, "type": "button",
                     "action_ts": "1"}],
    }


async def test_use_sets_shows_and_clears_the_default_and_survives_a_restart(
    slack_http: SlackHttp, mock_slack: MockSlack, slack_settings: Any, embedder: Any
) -> None:
    assert await run(slack_http, mock_slack, "use") == messages.channel_default_shown(None)
    assert await run(slack_http, mock_slack, "use bookshop") == messages.channel_default_set("bookshop")
    assert await run(slack_http, mock_slack, "use") == messages.channel_default_shown("bookshop")
    assert await run(slack_http, mock_slack, "use", channel="C2") == messages.channel_default_shown(None)
    listing = await run(slack_http, mock_slack, "specs")
    assert f"_{messages.default_marker()}_" in listing
    assert messages.default_marker() not in await run(slack_http, mock_slack, "specs", channel="C2")
    assert "There's no spec called `nope` here" in await run(slack_http, mock_slack, "use nope")

    # Another process on the same data: the default is in the registry, not in this process's memory.
    async with build_assistant(slack_settings, embedder=embedder) as rebuilt:
        bot = SlackBot(rebuilt, slack_settings, streaming=False, quick_reply=0.0)
        async with serve_bot(slack_settings, rebuilt, bot) as other:
            assert await run(other, mock_slack, "use") == messages.channel_default_shown("bookshop")
            assert await run(other, mock_slack, "use all") == messages.channel_default_cleared("bookshop")
    assert await run(slack_http, mock_slack, "use") == messages.channel_default_shown(None)


async def test_a_mention_in_a_channel_with_a_default_says_when_it_searched_everything(
    slack_http: SlackHttp, mock_slack: MockSlack
) -> None:
    await slack_http.event(upload("weather", mock_slack.add_file("weather.yaml", WEATHER, file_id="F2")))
    await mock_slack.wait_for("chat.update", lambda c: "Indexed `weather`" in c.blob())
    await run(slack_http, mock_slack, "use bookshop")
    await slack_http.event(mention("what's the weather forecast for Paris tomorrow?"))
    answer = (await mock_slack.wait_for("chat.update", lambda c: "GET /forecast" in c.blob()))[0]
    assert "this channel's default" in answer.blob()


async def test_a_private_upload_is_seen_only_in_its_channel(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    file = mock_slack.add_file("weather.yaml", WEATHER, file_id="F3")
    await slack_http.event(upload("weather", file, text="<@UBOT> --private", channel="G1", channel_type="group"))
    done = (await mock_slack.wait_for("chat.update", lambda c: "Indexed `weather`" in c.blob()))[0]
    assert messages.uploaded_private("weather") in done.blob()
    [button] = [e for b in done.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (button["action_id"], button["value"]) == (MAKE_SHARED, "weather")  # offers to share it again

    assert "weather" in await run(slack_http, mock_slack, "specs", channel="G1")
    assert "weather" not in await run(slack_http, mock_slack, "specs", channel="C1")
    assert "There's no spec called `weather` here" in await run(slack_http, mock_slack, "use weather", channel="C1")
    assert "There's no spec called `weather` here" in await run(
        slack_http, mock_slack, "ask forecast for Paris spec:weather", channel="C1")
    elsewhere = await run(slack_http, mock_slack, "ask what's the weather forecast for Paris?", channel="C1")
    assert "/forecast" not in elsewhere
    here = await run(slack_http, mock_slack, "ask what's the weather forecast for Paris?", channel="G1")
    assert "GET /forecast" in here
    # The assistant panel's suggested prompts come from what its own conversation sees.
    panel = Origin("slack", "T1", channel="D9", user="U1")
    assert [r.name for r in await slack_http.bot.assistant.list_specs(ListSpecs(panel))] == ["bookshop"]


async def test_the_upload_confirmation_button_makes_a_spec_private(slack_http: SlackHttp,
                                                                   mock_slack: MockSlack) -> None:
    file = mock_slack.add_file("weather.yaml", WEATHER, file_id="F4")
    await slack_http.event(upload("weather", file, text="", channel="D1", channel_type="im"))
    done = (await mock_slack.wait_for("chat.update", lambda c: "Indexed `weather`" in c.blob()))[0]
    [button] = [e for b in done.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (button["action_id"], button["value"]) == (MAKE_PRIVATE, "weather")
    assert slack_messages.MAKE_PRIVATE_BUTTON in done.blob()
    assert "weather" in await run(slack_http, mock_slack, "specs", channel="C1")  # shared until clicked

    url = mock_slack.response_url("vis")
    before = len(mock_slack.responses)
    await slack_http.action(click(MAKE_PRIVATE, "weather", "D1", "U2", url))  # not the uploader: refused
    await mock_slack.wait_for("respond", count=before + 1)
    assert "Only ada (who uploaded `weather`)" in mock_slack.responses[-1].params["text"]
    await slack_http.action(click(MAKE_PRIVATE, "weather", "D1", "U1", url))
    await mock_slack.wait_for("respond", count=before + 2)
    assert mock_slack.responses[-1].params["text"] == messages.made_private("weather")
    assert mock_slack.responses[-1].params["response_type"] == "ephemeral"
    assert "weather" not in await run(slack_http, mock_slack, "specs", channel="C1")
    assert "weather" in await run(slack_http, mock_slack, "specs", channel="D1")


async def test_an_upload_in_a_public_channel_offers_no_button(slack_http: SlackHttp, mock_slack: MockSlack) -> None:
    file = mock_slack.add_file("weather.yaml", WEATHER, file_id="F5")
    await slack_http.event(upload("weather", file))
    done = (await mock_slack.wait_for("chat.update", lambda c: "Indexed `weather`" in c.blob()))[0]
    assert not [b for b in done.params.get("blocks", []) if b["type"] == "actions"]
