"""The command line end to end, in-process (the model is loaded once per process)."""

import io
import json
import logging
from logging.handlers import RotatingFileHandler

import pytest
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from bot.cli import main, startup_error
from bot.console import ConsoleChat
from core import messages
from core.config import load_settings
from core.data_lock import data_dir_lock
from core.errors import ConfigError
from core.registry import SpecRegistry
from tests.fake_groq import Reply, fake_groq_in_thread, ranking


@pytest.fixture
def cli_env(monkeypatch, tmp_path, embedder):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path


def test_ingest_specs_ask_forget(cli_env, example_spec, capsys):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    out = capsys.readouterr()
    assert "Indexed `shop`: Bookshop API 1.2.0 (OpenAPI 3), 7 operations, 1 auth scheme" in out.out
    assert "Indexing: embedding" in out.err  # progress is shown while indexing

    assert main(["specs"]) == 0
    table = capsys.readouterr().out
    assert "shop" in table and "OpenAPI 3" in table and "1.2.0" in table and "7" in table

    assert main(["ask", "how do I delete a customer?", "--spec", "shop"]) == 0
    answer = capsys.readouterr().out
    assert "DELETE /customers/{customerId}" in answer and "```curl" in answer and "Sources:" in answer

    assert main(["forget", "shop"]) == 0
    assert "Forgot `shop`" in capsys.readouterr().out
    assert main(["ask", "anything?"]) == 1
    assert "No API specs have been uploaded" in capsys.readouterr().err


def test_user_errors_exit_non_zero_with_friendly_text(cli_env, capsys):
    bad = cli_env / "bad.json"
    bad.write_text('{"openapi": "3.0.0", "info": ')
    assert main(["ingest", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "isn't valid JSON" in err and "Traceback" not in err
    assert main(["ingest", str(cli_env / "missing.yaml")]) == 0
    assert "There's no file" in capsys.readouterr().out
    assert main(["forget", "nope"]) == 1
    assert "no spec called `nope`" in capsys.readouterr().err


def test_invalid_config_names_the_variable(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RATE_LIMIT_REQUESTS_PER_MINUTE", "lots")
    with pytest.raises(ConfigError, match="RATE_LIMIT_REQUESTS_PER_MINUTE"):
        load_settings()
    assert main(["specs"]) == 2
    assert "RATE_LIMIT_REQUESTS_PER_MINUTE" in capsys.readouterr().err


def test_secret_not_echoed_in_config_errors(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GROQ_API_KEY", "gsk_supersecret")
    monkeypatch.setenv("ENVIRONMENT", "staging-ish")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "ENVIRONMENT" in str(error.value) and "gsk_supersecret" not in str(error.value)


def test_debug_is_refused_in_production(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("DEBUG", "true")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "DEBUG=true" in str(error.value) and "ENVIRONMENT=production" in str(error.value)
    assert main(["run"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "DEBUG=true is not allowed when ENVIRONMENT=production" in line
    monkeypatch.setenv("ENVIRONMENT", "development")
    assert load_settings().effective_log_level == "DEBUG"


def test_log_file_from_the_environment(cli_env, monkeypatch, capsys, restore_logging):
    log_file = cli_env / "logs" / "assistant.log"
    monkeypatch.setenv("LOG_FILE", str(log_file))
    monkeypatch.setenv("LOG_FILE_MAX_BYTES", "65536")
    monkeypatch.setenv("LOG_FILE_BACKUPS", "3")
    assert main(["specs"]) == 0
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert "startup_sweep" in {r["event"] for r in records}
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, RotatingFileHandler))
    assert (handler.maxBytes, handler.backupCount) == (65536, 3)
    monkeypatch.setenv("LOG_FILE", str(cli_env))  # a folder: can't be written
    assert main(["specs"]) == 2
    assert "LOG_FILE" in capsys.readouterr().err


def test_startup_error_is_found_inside_exception_groups():
    error = ConfigError("Discord rejected DISCORD_BOT_TOKEN")
    nested = ExceptionGroup("run", [ExceptionGroup("platforms", [RuntimeError("x"), error])])
    assert startup_error(nested) is error
    assert startup_error(error) is error
    assert startup_error(ExceptionGroup("run", [RuntimeError("x")])) is None


async def test_console_chat_session(assistant, example_spec):
    stdin = io.StringIO(
        f"/upload {example_spec} shop\n/specs\n/use shop\nhow do I place an order in javascript?\n"
        "/use nope\n/forget shop\n/bogus\n/quit\n"
    )
    stdout = io.StringIO()
    await ConsoleChat(assistant, stdin=stdin, stdout=stdout).run()
    out = stdout.getvalue()
    assert "Indexed `shop`" in out
    assert "Questions here now search `shop` first" in out
    assert "POST /orders" in out and "```javascript" in out and "fetch(" in out
    assert "no spec called `nope`" in out
    assert "Forgot `shop`" in out
    assert "Unknown command `/bogus`" in out
    assert out.rstrip().endswith("Bye!")


def test_run_refuses_without_any_platform(cli_env, monkeypatch, capsys):
    for variable in ("SLACK_BOT_TOKEN", "DISCORD_BOT_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["run"]) == 2
    assert "No chat platform is configured" in capsys.readouterr().err


def test_configured_platforms():
    from bot.run import configured_platforms
    from core.config import Settings

    assert configured_platforms(Settings(_env_file=None)) == []
    both = Settings(slack_bot_token="xoxb-1", discord_bot_token="abc", _env_file=None)
    assert configured_platforms(both) == ["slack", "discord"]


async def test_console_unexpected_error_names_a_fresh_request_id_per_line(assistant, monkeypatch):
    async def broken(request):
        structlog.get_logger("core.assistant").info("listing")
        raise RuntimeError("registry down")

    monkeypatch.setattr(assistant, "list_specs", broken)
    chat = ConsoleChat(assistant, stdin=io.StringIO(), stdout=io.StringIO())
    with capture_logs(processors=[merge_contextvars]) as logs:
        first = await chat.handle("/specs")
        second = await chat.handle("/specs")
    errors = [e for e in logs if e["event"] == "unexpected_error"]
    refs = [e["request_id"] for e in errors]
    assert len(set(refs)) == 2
    assert first == messages.unexpected_error(refs[0]) and second == messages.unexpected_error(refs[1])
    assert [e["request_id"] for e in logs if e["event"] == "listing"] == refs


def test_backup_backups_restore(cli_env, example_spec, capsys):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    capsys.readouterr()
    dest = cli_env / "archives"
    assert main(["backup", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Wrote {dest}/api-assistant-backup-") and "1 specs" in out and "1 originals" in out
    archive = next(dest.glob("api-assistant-backup-*.tar.gz"))

    assert main(["backups", str(dest)]) == 0
    listing = capsys.readouterr().out
    assert archive.name in listing and "1 workspaces, 1 specs" in listing

    # Existing data, no terminal and no --yes: refused, nothing changed.
    assert main(["restore", str(archive)]) == 2
    err = capsys.readouterr().err
    assert "--yes" in err and "Nothing was changed" in err

    bad = cli_env / "bad.tar.gz"
    bad.write_bytes(archive.read_bytes()[:200])
    assert main(["restore", str(bad), "--yes"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Refusing to restore `bad.tar.gz`") and "\n" not in err and "Traceback" not in err

    assert main(["restore", str(archive), "--yes"]) == 0
    assert "Restored 1 workspaces, 1 specs" in capsys.readouterr().out
    assert main(["ask", "how do I delete a customer?", "--spec", "shop"]) == 0
    assert "DELETE /customers/{customerId}" in capsys.readouterr().out


def test_eval_scores_retrieval_and_writes_what_it_retrieved(cli_env, example_spec, capsys):
    questions = cli_env / "questions.jsonl"
    gold = [
        ("q1", "how do I delete a customer?", "DELETE", "/customers/{customerId}"),
        ("q2", "how do I refund an order?", "POST", "/orders/{orderId}/refund"),
    ]
    questions.write_text(
        "".join(
            json.dumps({"id": qid, "spec": example_spec.name, "question": text, "style": "plain",
                        "gold": [{"kind": "operation", "method": method, "path": path}]}) + "\n"
            for qid, text, method, path in gold
        )
    )
    out = cli_env / "results" / "eval.jsonl"
    assert main(["eval", "--questions", str(questions), "--specs", str(example_spec.parent), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"indexed {example_spec.name}: 7 operations" in printed.err
    assert "| overall | 2 | hybrid | 1.00 |" in printed.out and "hybrid overall: recall@1 1.000" in printed.out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["q1", "q2"]
    for line, (_, _, method, path) in zip(lines, gold, strict=True):
        top = line["retrieved"][0]
        assert (top["kind"], top["method"], top["path"]) == ("operation", method, path)
        assert len(line["retrieved"]) <= 10
    registry = SpecRegistry(load_settings().data_dir)
    try:
        assert registry.workspaces() == []  # the throwaway eval workspace is forgotten afterwards
    finally:
        registry.close()


def test_restore_and_the_other_commands_take_turns_on_data_dir(cli_env, example_spec, capsys):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    assert main(["backup", str(cli_env / "archives")]) == 0
    archive = next((cli_env / "archives").glob("api-assistant-backup-*.tar.gz"))
    data = load_settings().data_dir
    capsys.readouterr()

    with data_dir_lock(data, exclusive=False):  # what a running bot (or a terminal chat) holds
        assert main(["restore", str(archive), "--yes"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"Refusing to restore `{archive.name}`: the bot (`api-assistant run`) or another")
        assert "Nothing was changed" in err and err.count("\n") == 1
        assert main(["specs"]) == 0  # other commands share the folder with the bot
        assert main(["backup", str(cli_env / "archives")]) == 0  # and so does a backup
    with data_dir_lock(data, exclusive=True):  # what a restore holds
        for command in (["specs"], ["ask", "how do I delete a customer?"], ["ingest", str(example_spec)]):
            capsys.readouterr()
            assert main(command) == 2
            assert capsys.readouterr().err == f"DATA_DIR `{data}` is being restored (`api-assistant restore` is " \
                "running); try again once the restore has finished.\n"
    assert main(["restore", str(archive), "--yes"]) == 0  # the lock is free again


def test_reindex_prints_progress_per_spec_and_a_summary(cli_env, example_spec, capsys):
    assert main(["reindex"]) == 0
    assert "Nothing to re-index: no specs have been indexed yet." in capsys.readouterr().out
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    assert main(["ingest", str(example_spec), "--name", "books"]) == 0
    capsys.readouterr()

    assert main(["reindex"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == "[1/2] local:local/books: re-indexing…"
    assert lines[1].startswith("[1/2] local:local/books: re-indexed, 7 operations in ")
    assert lines[2] == "[2/2] local:local/shop: re-indexing…"
    assert lines[3].startswith("[2/2] local:local/shop: re-indexed, 7 operations in ")
    assert lines[4].startswith("Re-indexed 2 specs in ") and len(lines) == 5
    assert "Indexing: embedding 9/9" in out.err  # each spec's own steps, as `ingest` shows them

    assert main(["reindex", "--workspace", "local:local", "--spec", "shop"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1/1] local:local/shop: re-indexing…" and lines[-1].startswith("Re-indexed 1 spec in ")
    assert main(["ask", "how do I delete a customer?", "--spec", "shop"]) == 0
    assert "DELETE /customers/{customerId}" in capsys.readouterr().out


def test_reindex_names_an_unknown_workspace_or_spec(cli_env, example_spec, capsys):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    capsys.readouterr()
    assert main(["reindex", "--workspace", "slack:T0NOPE"]) == 1
    err = capsys.readouterr().err
    assert "There's no workspace `slack:T0NOPE` with specs. Workspaces: `local:local`." in err
    assert "Traceback" not in err
    assert main(["reindex", "--spec", "nope"]) == 1
    assert "There's no spec called `nope` here. Indexed specs: `shop`." in capsys.readouterr().err


def _record_as_indexed_before_models_were_recorded(data_dir, name):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from core.registry import SpecRegistry

    registry = SpecRegistry(data_dir)
    try:
        record = registry.get("local:local", name)
        assert record is not None and record.embedding_model
        registry.put(replace(record, embedding_model=""))
    finally:
        registry.close()


def test_with_reindex_off_the_cli_reports_stale_specs_until_reindex(cli_env, example_spec, capsys, monkeypatch):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    _record_as_indexed_before_models_were_recorded(cli_env / "data", "shop")
    monkeypatch.setenv("REINDEX_ON_MODEL_CHANGE", "false")
    capsys.readouterr()

    assert main(["specs"]) == 0
    out = capsys.readouterr()
    [line] = [line for line in out.out.splitlines() if line.startswith("shop")]
    assert line.endswith("(needs re-index)")
    assert "spec_needs_reindex" in out.err and "api-assistant reindex --workspace local:local --spec shop" in out.err
    assert main(["ask", "how do I delete a customer?"]) == 1
    assert "`shop` was indexed with a different embedding model" in capsys.readouterr().err

    assert main(["reindex"]) == 0
    assert "[1/1] local:local/shop: re-indexed" in capsys.readouterr().out
    assert main(["specs"]) == 0
    out = capsys.readouterr()
    assert "needs re-index" not in out.out and "spec_needs_reindex" not in out.err


def test_by_default_a_stale_spec_is_re_indexed_when_the_next_command_starts(cli_env, example_spec, capsys):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    _record_as_indexed_before_models_were_recorded(cli_env / "data", "shop")
    capsys.readouterr()
    assert main(["ask", "how do I delete a customer?"]) == 0
    out = capsys.readouterr()
    assert "DELETE /customers/{customerId}" in out.out
    assert "embedding_model_changed" in out.err and "[1/1] local:local/shop: re-indexed" in out.err


def test_a_model_folder_that_does_not_exist_is_one_line_naming_the_setting(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("EMBEDDING_MODEL", str(cli_env / "no-such-model"))
    assert main(["specs"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"EMBEDDING_MODEL '{cli_env / 'no-such-model'}' could not be loaded")


def _questions_file(folder, example_spec):
    questions = folder / "questions.jsonl"
    gold = [
        ("q1", "how do I delete a customer?", "DELETE", "/customers/{customerId}"),
        ("q2", "how do I refund an order?", "POST", "/orders/{orderId}/refund"),
    ]
    questions.write_text(
        "".join(
            json.dumps({"id": qid, "spec": example_spec.name, "question": text, "style": "plain",
                        "gold": [{"kind": "operation", "method": method, "path": path}]}) + "\n"
            for qid, text, method, path in gold
        )
    )
    return questions


def test_eval_rerank_is_refused_clearly_without_a_key(cli_env, example_spec, capsys):
    questions = _questions_file(cli_env, example_spec)
    out = cli_env / "eval.jsonl"
    args = ["eval", "--questions", str(questions), "--specs", str(example_spec.parent), "--out", str(out), "--rerank"]
    assert main(args) == 1
    printed = capsys.readouterr()
    assert "`eval --rerank`" in printed.err and "GROQ_API_KEY" in printed.err and "Traceback" not in printed.err
    assert "indexed" not in printed.err and not out.exists()  # refused before any work


def test_eval_rerank_is_refused_when_rerank_is_turned_off(cli_env, example_spec, capsys, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk_test_not_real")
    monkeypatch.setenv("GROQ_BASE_URL", "http://127.0.0.1:9")  # never reached
    monkeypatch.setenv("RERANK_ENABLED", "false")
    questions = _questions_file(cli_env, example_spec)
    args = ["eval", "--questions", str(questions), "--specs", str(example_spec.parent), "--out", str(cli_env / "o")]
    assert main([*args, "--rerank"]) == 1
    assert "RERANK_ENABLED=false" in capsys.readouterr().err


def test_eval_rerank_measures_the_reranker_next_to_the_fused_order(cli_env, example_spec, capsys, monkeypatch):
    questions = _questions_file(cli_env, example_spec)
    out = cli_env / "eval.jsonl"
    with fake_groq_in_thread() as fake:
        monkeypatch.setenv("GROQ_API_KEY", "gsk_test_not_real")
        monkeypatch.setenv("GROQ_BASE_URL", fake.base_url)
        # The model puts the fused second candidate first for q1, and gives garbage for q2 (a fallback).
        fake.script_rerank(ranking(2), Reply("no idea"))
        args = ["eval", "--questions", str(questions), "--specs", str(example_spec.parent), "--out", str(out)]
        assert main([*args, "--rerank"]) == 0
        printed = capsys.readouterr()
        assert len(fake.rerank_requests) == 2 and fake.requests == []  # eval never generates answers
        q1, q2 = [json.loads(line) for line in out.read_text().splitlines()]
        assert q1["reranked"][0] == q1["retrieved"][1] and q1["reranked"][1] == q1["retrieved"][0]
        assert q2["reranked"] == q2["retrieved"]
        # Without --rerank, the key changes nothing: no call at all.
        assert main(args) == 0
        assert len(fake.all_requests) == 2
    assert "| overall | 2 | hybrid | 1.00 |" in printed.out
    assert "| overall | 2 | hybrid + rerank | 0.50 |" in printed.out  # q1 demoted, q2 kept its fused order
    assert "hybrid overall: recall@1 1.000" in printed.out
    assert "hybrid + rerank overall: recall@1 0.500" in printed.out
    assert "reranks: ok 1, cached 0, fallback 1" in printed.out and "1 rerank fell back" in printed.out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert "reranked" not in lines[0]  # the second run, without --rerank, wrote the file last
    assert "hybrid + rerank" not in capsys.readouterr().out


def test_diagram_and_lint_on_the_command_line(cli_env, example_spec, capsys):
    assert main(["ingest", str(example_spec), "--name", "shop"]) == 0
    assert "2 operations have no description" in capsys.readouterr().out  # the upload's quality line
    out_file = cli_env / "out" / "auth.png"
    assert main(["diagram", "shop", "auth", "--out", str(out_file)]) == 0
    printed = capsys.readouterr().out
    assert "Auth flow of `shop`" in printed and f"Saved to {out_file}" in printed
    assert out_file.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert main(["diagram", "shop", "Nope"]) == 1
    assert "`shop` has no schema called `Nope`" in capsys.readouterr().err
    assert main(["lint", "shop"]) == 0
    summary = capsys.readouterr().out
    assert "Quality report for `shop`" in summary and f"Saved to {cli_env / 'shop-lint.txt'}" in summary
    assert main(["lint", "shop", "--full"]) == 0
    assert "#/components/schemas/Book/properties/isbn" in capsys.readouterr().out


async def test_console_draws_and_saves(assistant, example_spec):
    stdin = io.StringIO(f"/upload {example_spec} shop\n/diagram shop overview\ndraw the Book schema of shop\n/quit\n")
    stdout = io.StringIO()
    await ConsoleChat(assistant, stdin=stdin, stdout=stdout).run()
    out = stdout.getvalue()
    files = assistant.settings.data_dir / "files"
    assert f"Saved to {files / 'shop-overview.png'}" in out and f"Saved to {files / 'shop-schema-Book.png'}" in out
    assert (files / "shop-schema-Book.png").read_bytes().startswith(b"\x89PNG")
