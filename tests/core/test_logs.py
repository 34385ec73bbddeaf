"""Logging: every line (ours, libraries', tracebacks) is rendered by structlog and scrubbed after rendering."""

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.logs import REDACTED, LogFile, configure_logging, is_secret_key, scrub_text

SLACK_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"
DISCORD_TOKEN = "MTE4NTQ2NzkwMTIzNDU2Nzg5MA.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
GROQ_KEY = "gsk_AbCdEfGhIjKlMnOpQrStUvWxYz012345"
SECRETS = (SLACK_TOKEN, DISCORD_TOKEN, GROQ_KEY, "s3cr3t-pw", "eyJhbGciOiJIUzI1NiJ9")


@pytest.fixture
def configured(restore_logging):
    """Configure logging for one test; `restore_logging` puts back what was there."""

    def configure(json_output: bool, level: str = "INFO", **options: Any) -> None:
        configure_logging(level, json=json_output, **options)

    return configure


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def _fail_with_token() -> None:
    raise RuntimeError(f"Slack refused {SLACK_TOKEN}: invalid_auth (Authorization: Bearer eyJhbGciOiJIUzI1NiJ9)")


@pytest.mark.parametrize("json_output", [True, False])
def test_a_token_inside_an_exception_is_redacted_in_the_traceback(configured, capsys, json_output):
    configured(json_output)
    log = structlog.get_logger("core.assistant")
    try:
        _fail_with_token()
    except RuntimeError:
        log.exception("slack_call_failed", workspace="T1")
    err = capsys.readouterr().err
    _no_secrets(err)
    assert "Traceback (most recent call last)" in err and "_fail_with_token" in err
    assert f"Slack refused {REDACTED}: invalid_auth" in err
    if json_output:
        [line] = _lines(err)
        record = json.loads(line)
        assert record["event"] == "slack_call_failed" and record["workspace"] == "T1" and record["level"] == "error"
        assert "RuntimeError" in record["exception"]


@pytest.mark.parametrize("json_output", [True, False])
def test_library_log_lines_go_through_structlog_and_are_scrubbed(configured, capsys, json_output):
    configured(json_output)
    logging.getLogger("slack_sdk.web.base_client").warning(
        "Sending a request - headers: %s", {"Authorization": f"Bearer {SLACK_TOKEN}", "token": "s3cr3t-pw"}
    )
    logging.getLogger("discord.client").error("Logging in using static token %s failed", DISCORD_TOKEN)
    logging.getLogger("httpx").warning(
        "HTTP Request: GET https://ada:s3cr3t-pw@api.example.com/v1/x?api_key=%s&q=cats", GROQ_KEY
    )
    try:
        _fail_with_token()
    except RuntimeError:
        logging.getLogger("groq._base_client").exception("request failed")
    err = capsys.readouterr().err
    _no_secrets(err)
    assert "q=cats" in err and "api.example.com/v1/x" in err  # only the credentials go
    assert "Traceback (most recent call last)" in err
    lines = _lines(err)
    if json_output:
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert [r["logger"] for r in records] == [
            "slack_sdk.web.base_client",
            "discord.client",
            "httpx",
            "groq._base_client",
        ]
        assert all("timestamp" in r and "level" in r for r in records)
        assert "RuntimeError" in records[-1]["exception"]
    else:
        assert "[slack_sdk.web.base_client]" in err and "[httpx]" in err


def test_counters_survive_and_secret_keys_do_not(configured, capsys):
    configured(True)
    log = structlog.get_logger("core.generation")
    log.info("groq_usage", prompt_tokens=12, completion_tokens=30, tokens=42, max_tokens=1024, total_tokens=42)
    log.info(
        "settings",
        token="plain",
        bot_token="plain",
        api_key="plain",
        authorization="plain",
        password="plain",
        secret="plain",
        signing_secret="plain",
        client_secret="plain",
    )
    usage, config = (json.loads(line) for line in _lines(capsys.readouterr().err))
    expected = {"prompt_tokens": 12, "completion_tokens": 30, "tokens": 42, "max_tokens": 1024, "total_tokens": 42}
    assert {k: usage[k] for k in expected} == expected
    secret_keys = {k: v for k, v in config.items() if k not in {"event", "level", "timestamp"}}
    assert secret_keys and set(secret_keys.values()) == {REDACTED}


@pytest.mark.parametrize("json_output", [True, False])
def test_secrets_at_line_starts_and_in_nested_values(configured, capsys, json_output):
    # Escaped for JSON or repr, a line break before `token=` is the two characters `\n`: scrubbed before that.
    configured(json_output)
    log = structlog.get_logger("bot.slack_app")
    log.warning("reply_failed", detail=f"upstream said:\ntoken=s3cr3t-pw\n{DISCORD_TOKEN}")
    log.warning("request", headers={"Authorization": "plain", "X-Trace": "on"}, attempts=[{"api_key": "plain"}])
    err = capsys.readouterr().err
    _no_secrets(err)
    assert "plain" not in err and "X-Trace" in err
    if json_output:
        detail, request = (json.loads(line) for line in _lines(err))
        assert detail["detail"] == f"upstream said:\ntoken={REDACTED}\n{REDACTED}"
        assert request["headers"] == {"Authorization": REDACTED, "X-Trace": "on"}


@pytest.mark.parametrize(
    "key", ["token", "bot_token", "app_token", "api_key", "X-Api-Key", "authorization", "password", "signing_secret"]
)
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["prompt_tokens", "completion_tokens", "tokens", "max_tokens", "token_count", "event"])
def test_counter_keys_are_not_secrets(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("prompt_tokens=12 completion_tokens=5 max_tokens: 9", "prompt_tokens=12 completion_tokens=5 max_tokens: 9"),
        (f"token={SLACK_TOKEN}", f"token={REDACTED}"),
        ('{"api_key": "abc", "n": 1}', f'{{"api_key": "{REDACTED}", "n": 1}}'),
        ("'client_secret': 'abc'", f"'client_secret': '{REDACTED}'"),
        ("Authorization: Basic YWRhOnB3ZA==", f"Authorization: {REDACTED} {REDACTED}"),
        ("GET /x?access_token=abc&page=2", f"GET /x?access_token={REDACTED}&page=2"),
        ("key AKIAIOSFODNN7EXAMPLE used", f"key {REDACTED} used"),
        ("app token xapp-1-A0-123-abc", f"app token {REDACTED}"),
        ("postgres://user:pw@db:5432/x", f"postgres://{REDACTED}@db:5432/x"),
        ('{"event": "token refreshed", "secretary": "bob"}', '{"event": "token refreshed", "secretary": "bob"}'),
    ],
)
def test_scrub_text(line, expected):
    assert scrub_text(line) == expected


_TOKEN_CHARS = "abcXYZ019_-."


@settings(max_examples=60, deadline=None)
@given(
    unit=st.sampled_from(
        [
            *("a", "a.", "a" * 30 + ".", "xoxb-", "gsk_", "token", "token=", "Bearer ", "://", "://a", "AKIA"),
            *(" ", "@", '\\"', "'api_key': '"),
        ]
    ),
    noise=st.text(alphabet=_TOKEN_CHARS, max_size=5),
    length=st.integers(min_value=100_000, max_value=200_000),
)
def test_scrubbing_is_linear_on_hostile_lines(unit, noise, length):
    line = ((unit + noise) * (length // len(unit + noise) + 1))[:length]
    started = time.perf_counter()
    scrub_text(line)
    assert time.perf_counter() - started < 2.0  # generous: a quadratic pattern takes minutes on these


# ---- where lines go: stdout for the service, LOG_FILE rotated, request ids ---------------------------------


def test_stdout_stream(configured, capsys):
    configured(True, stream="stdout")
    structlog.get_logger("bot.run").info("platforms_starting", platforms=["slack"])
    logging.getLogger("discord.client").warning("Logging in using static token %s", DISCORD_TOKEN)
    captured = capsys.readouterr()
    assert captured.err == ""
    started, library = (json.loads(line) for line in _lines(captured.out))
    assert started["event"] == "platforms_starting" and library["logger"] == "discord.client"
    _no_secrets(captured.out)


def _file_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_log_file_gets_scrubbed_json_lines_while_the_screen_stays_quiet(configured, capsys, tmp_path):
    path = tmp_path / "logs" / "assistant.log"  # the folder is created
    configured(False, level="WARNING", log_file=LogFile(path, level="INFO"))
    log = structlog.get_logger("core.assistant")
    log.info("question_answered", mode="cached", api_key="plain")
    logging.getLogger("slack_sdk.web.base_client").info("Sending a request - token=%s", SLACK_TOKEN)
    try:
        _fail_with_token()
    except RuntimeError:
        log.exception("slack_call_failed")
    err = capsys.readouterr().err
    assert "question_answered" not in err and "Sending a request" not in err  # below the screen's level
    assert "slack_call_failed" in err and not err.lstrip().startswith("{")  # the screen stays readable
    file_text = path.read_text(encoding="utf-8")
    _no_secrets(file_text + err)
    answered, library, failed = _file_records(path)
    assert answered["event"] == "question_answered" and answered["api_key"] == REDACTED
    assert library["logger"] == "slack_sdk.web.base_client" and library["level"] == "info"
    assert failed["level"] == "error" and "Traceback (most recent call last)" in failed["exception"]


def test_log_file_rotates_by_size_and_keeps_the_backups_asked_for(configured, tmp_path):
    path = tmp_path / "assistant.log"
    configured(True, log_file=LogFile(path, max_bytes=4096, backups=2))
    log = structlog.get_logger("core.assistant")
    for i in range(400):  # about 40 KB of lines: several rotations
        log.info("question_answered", n=i, padding="x" * 40)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["assistant.log", "assistant.log.1", "assistant.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 4096
    assert _file_records(path)[-1]["n"] == 399  # the newest lines are in the live file
    numbers = [r["n"] for name in reversed(files) for r in _file_records(tmp_path / name)]
    assert numbers == list(range(numbers[0], 400))  # nothing lost or reordered across the kept files


def test_unwritable_log_file_is_a_config_error(configured, tmp_path):
    with pytest.raises(ConfigError, match="LOG_FILE"):
        configured(True, log_file=LogFile(tmp_path))  # a folder, not a file


@pytest.mark.parametrize("json_output", [True, False])
def test_bound_request_id_is_on_every_line(configured, capsys, json_output):
    configured(json_output)
    with structlog.contextvars.bound_contextvars(request_id="ab12cd34"):
        structlog.get_logger("core.assistant").info("question_answered")
        logging.getLogger("groq._base_client").warning("retrying")  # library lines too
    structlog.get_logger("core.assistant").info("later")
    lines = _lines(capsys.readouterr().err)
    assert all("ab12cd34" in line for line in lines[:2]) and "ab12cd34" not in lines[2]
    if json_output:
        assert [json.loads(line).get("request_id") for line in lines] == ["ab12cd34", "ab12cd34", None]
