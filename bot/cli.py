"""`api-assistant`: the command line.

api-assistant ingest PATH [--name NAME]   index a spec file
api-assistant specs                       list indexed specs
api-assistant forget NAME                 remove one
api-assistant diff NAME [--from V] [--to V]   what changed between two kept versions (breaking first)
api-assistant ask "QUESTION" [--spec N]   print an answer
api-assistant check TEXT|@FILE [--spec N] check a curl command, HTTP request or JSON body against the spec
api-assistant console                     terminal chat
api-assistant demo                        index the bundled example, then open the chat
api-assistant eval --questions F --specs DIR --out OUT [--rerank]   retrieval evaluation (--rerank: with the
                                          LLM reranker too, next to the fused order; needs GROQ_API_KEY)
api-assistant backup [DEST]               archive DATA_DIR's registry and originals (default BACKUP_DEST,
                                          else DATA_DIR/backups)
api-assistant backups [DEST]              list archives with age, size and counts
api-assistant restore SRC [--yes]         verify an archive, then restore it and rebuild the vectors
api-assistant reindex [--workspace W] [--spec NAME]   rebuild vectors and lexical indexes from the originals
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from bot.console import ConsoleChat, local_origin, progress_printer, run_local
from bot.run import NO_PLATFORM, configured_platforms, run_platforms
from core import messages
from core.actions import DiffSpec, LintSpec, PathAttachment
from core.assistant import Assistant
from core.backup import (
    backup_destination,
    backup_now,
    describe_counts,
    download_from_s3,
    list_backups,
    list_s3_backups,
    restore_backup,
    s3_client,
    s3_location,
)
from core.backup_schedule import check_backup_schedule
from core.bootstrap import build_assistant
from core.checks.pasted import MAX_CHECK_CHARS
from core.commands.catalogue import Invocation, command
from core.config import Settings, load_settings
from core.data_lock import data_lock, describe_data
from core.errors import BackupError, ConfigError, DataDirBusyError, UserFacingError
from core.library import ReindexProgress
from core.logs import LogFile, configure_logging

CLI_ORIGIN = local_origin("cli", "cli")
EXAMPLE_SPEC = "bookshop_openapi.yaml"


def example_spec_path() -> Path:
    """The small example API bundled with the package."""
    return Path(str(resources.files("core") / "examples" / EXAMPLE_SPEC))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="api-assistant", description="Answers questions about your API specs.")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="index a spec file")
    ingest.add_argument("path", type=Path)
    ingest.add_argument("--name", help="the name to index it under (default: from the file name)")
    commands.add_parser("specs", help="list indexed specs")
    forget = commands.add_parser("forget", help="remove an indexed spec")
    forget.add_argument("name")
    diff = commands.add_parser("diff", help="what changed between two kept versions of a spec")
    diff.add_argument("name")
    diff.add_argument("--from", dest="before", help="the older version: its number or the spec's own version")
    diff.add_argument("--to", dest="after", help="the newer version (default: the current one)")
    diff.add_argument("--full", action="store_true", help="print every change, not the summary")
    ask = commands.add_parser("ask", help="ask a question")
    ask.add_argument("question")
    ask.add_argument("--spec", help="only search this spec")
    check = commands.add_parser("check", help="check a request or response against the spec")
    check.add_argument("request", help="a curl command, an HTTP request or a JSON body; @FILE reads it from a file")
    check.add_argument("--spec", help="only check against this spec")
    diagram = commands.add_parser("diagram", help="draw a spec's auth flow, overview or one schema as a PNG")
    diagram.add_argument("name")
    diagram.add_argument("what", nargs="?", default="overview", help="auth, overview (default) or a schema's name")
    diagram.add_argument("--out", type=Path, help="the PNG file to write (default: NAME-KIND.png here)")
    lint = commands.add_parser("lint", help="a quality report for a spec: validity and documentation coverage")
    lint.add_argument("name")
    lint.add_argument("--full", action="store_true", help="print every finding, not the summary")
    commands.add_parser("console", help="chat in the terminal")
    commands.add_parser("demo", help="index the bundled example spec, then chat in the terminal")
    commands.add_parser("run", help="serve Slack and/or Discord (whichever has credentials configured)")
    sync = commands.add_parser("discord-sync", help="register the /api slash commands with Discord")
    sync.add_argument("--guild", type=int, help="register in one server only (instant; for testing)")
    evaluate = commands.add_parser("eval", help="measure retrieval on a question file")
    evaluate.add_argument("--questions", type=Path, required=True)
    evaluate.add_argument("--specs", type=Path, required=True)
    evaluate.add_argument("--out", type=Path, required=True)
    evaluate.add_argument(
        "--rerank", action="store_true", help="also measure the LLM reranker, next to the fused order (GROQ_API_KEY)"
    )
    backup = commands.add_parser("backup", help="write a backup archive (default: BACKUP_DEST, else DATA_DIR/backups)")
    backup.add_argument("dest", nargs="?", help="a folder or s3://bucket/prefix")
    listing = commands.add_parser("backups", help="list backup archives (default: BACKUP_DEST, else DATA_DIR/backups)")
    listing.add_argument("dest", nargs="?", help="a folder or s3://bucket/prefix")
    restore = commands.add_parser("restore", help="verify a backup archive, restore it and rebuild the vectors")
    restore.add_argument("source", help="an archive file or s3://bucket/key")
    restore.add_argument("--yes", action="store_true", help="replace existing data without asking")
    reindex = commands.add_parser("reindex", help="rebuild vectors and lexical indexes from the stored originals")
    reindex.add_argument("--workspace", help="only this workspace (as stored, e.g. `slack:T0123` or `local:local`)")
    reindex.add_argument("--spec", help="only specs of this name")
    return parser


def _backup(settings: Settings, dest: str | None) -> int:
    info = backup_now(settings, dest)
    print(f"Wrote {info.where} ({_size(info.size)}: {describe_counts(info.counts)}).")
    return 0


def _backups(settings: Settings, dest: str | None) -> int:
    target = backup_destination(settings, dest)
    location = s3_location(target)
    if location is not None:
        found = list_s3_backups(location, s3_client(settings.s3_endpoint_url))
    else:
        found = list_backups(Path(target))
    if not found:
        print("No backups yet.")
        return 0
    now = datetime.now(UTC)
    print(f"{'archive':<62} {'age':>8} {'size':>9}  counts")
    for info in found:
        hours = (now - info.created).total_seconds() / 3600
        age = f"{hours / 24:.1f}d" if hours >= 24 else f"{hours:.1f}h"
        counts = describe_counts(info.counts) or "(unreadable manifest)"
        print(f"{info.path.name:<62} {age:>8} {_size(info.size):>9}  {counts}")
    return 0


def _confirm_replace(yes: bool) -> Callable[[dict[str, Any]], bool]:
    def confirm(manifest: dict[str, Any]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            print("DATA_DIR already holds data; pass --yes to replace it.", file=sys.stderr)
            return False
        created = manifest.get("created", "?")
        answer = input(f"Replace the current data with the backup taken {created}? [y/N] ")
        return answer.strip().lower() in {"y", "yes"}

    return confirm


async def _restore(settings: Settings, source: str, yes: bool) -> int:
    location = s3_location(source)
    # Alone on DATA_DIR from before the first change until the vectors are rebuilt (see core.data_lock).
    try:
        with data_lock(settings, exclusive=True):
            if location is None:
                counts = await restore_backup(settings, Path(source), _confirm_replace(yes))
            else:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix=".download-", dir=settings.data_dir) as tmp:
                    client = s3_client(settings.s3_endpoint_url)
                    archive = await asyncio.to_thread(download_from_s3, location, client, Path(tmp))
                    counts = await restore_backup(settings, archive, _confirm_replace(yes))
    except DataDirBusyError as exc:
        label = PurePosixPath(location.prefix).name if location else Path(source).name
        raise BackupError(
            messages.backup_refused(label, messages.restore_while_running(describe_data(settings)))
        ) from exc
    print(f"Restored {describe_counts(counts)}; vectors rebuilt.")
    return 0


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1024:.1f} KB" if num_bytes < 1024 * 1024 else f"{num_bytes / 1024 / 1024:.1f} MB"


async def _ingest(assistant: Assistant, path: Path, name: str | None) -> str:
    if not path.is_file():
        return f"There's no file at `{path}`."
    arguments = {"file": PathAttachment(path), "name": name}
    return await run_local(assistant, CLI_ORIGIN, "upload", arguments, progress_printer(sys.stderr))


async def _specs(assistant: Assistant) -> str:
    return await run_local(assistant, CLI_ORIGIN, "specs", {})


async def _forget(assistant: Assistant, name: str) -> str:
    return await run_local(assistant, CLI_ORIGIN, "forget", {"name": name})


async def _diff(assistant: Assistant, name: str, before: str | None, after: str | None, full: bool) -> str:
    if full:
        report = await assistant.diff(DiffSpec(CLI_ORIGIN, name, before, after))
        return report.full_text()
    return await run_local(assistant, CLI_ORIGIN, "diff", {"name": name, "before": before, "after": after})


async def _diagram(assistant: Assistant, name: str, what: str, out: Path | None) -> str:
    return await run_local(assistant, CLI_ORIGIN, "diagram", {"name": name, "what": what}, out=out)


async def _lint(assistant: Assistant, name: str, full: bool) -> str:
    if full:
        return (await assistant.lint(LintSpec(CLI_ORIGIN, name))).full_text()
    return await run_local(assistant, CLI_ORIGIN, "lint", {"name": name})


async def _ask(assistant: Assistant, question: str, spec: str | None) -> str:
    return await run_local(assistant, CLI_ORIGIN, "ask", {"question": question, "spec": spec})


async def _check(assistant: Assistant, text: str, spec: str | None) -> str:
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            return f"There's no file at `{path}`."
        with path.open("rb") as handle:  # no more than a check reads, however big the file
            text = handle.read(MAX_CHECK_CHARS + 1).decode("utf-8", errors="replace")
    return await run_local(assistant, CLI_ORIGIN, "check", {"request": text, "spec": spec})


async def _reindex(assistant: Assistant, workspace: str | None, spec: str | None) -> int:
    """A line per spec on stdout (its indexing steps on stderr, like `ingest`), then a summary; 1 if any failed."""
    show_step = progress_printer(sys.stderr)

    def show(event: ReindexProgress) -> None:
        if event.step is not None:
            show_step(event.step)
        else:
            print(event.message, flush=True)

    report = await assistant.reindex(workspace, spec, show)
    print(report.summary if report.indexed or report.failed or report.skipped else messages.nothing_to_reindex())
    return 1 if report.failed else 0


async def _eval(assistant: Assistant, questions: Path, specs: Path, out: Path, rerank: bool = False) -> str:
    from evaluation.retrieval import load_questions, metrics, run_evaluation, write_results

    if rerank and assistant.reranker is None:
        raise UserFacingError(messages.rerank_unavailable(assistant.settings.generation_enabled))
    asked = load_questions(questions)
    result = await run_evaluation(assistant, asked, specs, log=lambda m: print(m, file=sys.stderr), rerank=rerank)
    write_results(result, out)
    lines = [result.table(), ""]
    rows = [("hybrid", result.hybrid_ranks)]
    if result.reranked_ranks is not None:
        rows.append(("hybrid + rerank", result.reranked_ranks))
    for label, ranks in rows:
        lines.append(f"{label} overall: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics(ranks).items()))
    if result.rerank_outcomes is not None:
        outcomes = result.rerank_outcomes
        lines.append("reranks: " + ", ".join(f"{o} {outcomes.get(o, 0)}" for o in ("ok", "cached", "fallback")))
        if outcomes.get("fallback"):
            lines.append(messages.rerank_fallbacks_in_eval(outcomes["fallback"]))
    return "\n".join(lines)


async def _main(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in {"backup", "backups", "restore"}:
        try:
            if args.command == "backup":
                return await asyncio.to_thread(_backup, settings, args.dest)
            if args.command == "backups":
                return _backups(settings, args.dest)
            return await _restore(settings, args.source, args.yes)
        except BackupError as exc:
            print(exc.user_message, file=sys.stderr)
            return 2
    if args.command == "discord-sync":
        from bot.discord_app.runner import sync_commands

        count = await sync_commands(settings, guild_id=args.guild)
        print(f"Synced {count} top-level command{'s' * (count != 1)} with Discord.")
        return 0
    if args.command == "run":
        if not configured_platforms(settings):
            raise ConfigError(NO_PLATFORM)
        check_backup_schedule(settings)
    # Every command that opens the data shares DATA_DIR with the others; a restore needs it alone.
    try:
        with data_lock(settings, exclusive=False):  # held until the command ends (see core.data_lock)
            if args.command == "run":
                return await _serve(settings)
            return await _local_command(args, settings)
    except DataDirBusyError as exc:
        raise ConfigError(messages.data_dir_being_restored(describe_data(settings))) from exc


async def _serve(settings: Settings) -> int:
    # A server loads the model before it connects anywhere: ready means it can answer at once. A re-index after
    # a model change runs in the background there (/ready waits for it).
    async with build_assistant(settings, load_model=True, reindex_in_background=True) as assistant:
        await run_platforms(settings, assistant)
    return 0


async def _local_command(args: argparse.Namespace, settings: Settings) -> int:
    # Other commands wait for a re-index after a model change first; `reindex` skips that check: it rebuilds
    # what it is asked to itself.
    async with build_assistant(settings, check_model=args.command != "reindex") as assistant:
        action: Callable[[], Awaitable[str]] | None = None
        if args.command == "console":
            await ConsoleChat(assistant).run()
            return 0
        if args.command == "demo":
            chat = ConsoleChat(assistant)
            example = PathAttachment(example_spec_path())
            upload = Invocation(command("upload"), chat.origin, {"file": example, "name": "bookshop"})
            print(await chat.execute(upload))
            await chat.run()
            return 0
        if args.command == "ingest":
            action = lambda: _ingest(assistant, args.path, args.name)  # noqa: E731
        elif args.command == "specs":
            action = lambda: _specs(assistant)  # noqa: E731
        elif args.command == "forget":
            action = lambda: _forget(assistant, args.name)  # noqa: E731
        elif args.command == "diff":
            action = lambda: _diff(assistant, args.name, args.before, args.after, args.full)  # noqa: E731
        elif args.command == "diagram":
            action = lambda: _diagram(assistant, args.name, args.what, args.out)  # noqa: E731
        elif args.command == "lint":
            action = lambda: _lint(assistant, args.name, args.full)  # noqa: E731
        elif args.command == "ask":
            action = lambda: _ask(assistant, args.question, args.spec)  # noqa: E731
        elif args.command == "check":
            action = lambda: _check(assistant, args.request, args.spec)  # noqa: E731
        elif args.command == "eval":
            action = lambda: _eval(assistant, args.questions, args.specs, args.out, args.rerank)  # noqa: E731
        with bound_contextvars(request_id=CLI_ORIGIN.request_id):  # one command, one action
            try:
                if action is None:
                    return await _reindex(assistant, args.workspace, args.spec)
                print(await action())
            except UserFacingError as exc:
                print(exc.user_message, file=sys.stderr)
                return 1
            except Exception:
                structlog.get_logger(__name__).exception("unexpected_error", command=args.command)
                print(messages.unexpected_error(CLI_ORIGIN.request_id), file=sys.stderr)
                return 1
        return 0


def startup_error(exc: BaseException) -> ConfigError | None:
    """The `ConfigError` that ended the program, also when a `TaskGroup` wrapped it in an exception group."""
    while isinstance(exc, BaseExceptionGroup):
        matched = exc.subgroup(ConfigError)
        if matched is None:
            return None
        exc = matched.exceptions[0]
    return exc if isinstance(exc, ConfigError) else None


def _configure_logging(command: str, settings: Settings) -> None:
    """`run` logs to stdout (a service's log stream); commands whose stdout is their output log to stderr.

    In the terminal chat, info logs would interleave with the conversation, so its screen shows warnings
    only; `LOG_FILE`, when set, still gets every line at `LOG_LEVEL`.
    """
    level = settings.effective_log_level
    interactive = command in {"console", "demo"} and not settings.debug
    screen_level = "WARNING" if interactive and level in {"DEBUG", "INFO"} else level
    log_file = (
        LogFile(settings.log_file, settings.log_file_max_bytes, settings.log_file_backups, level)
        if settings.log_file
        else None
    )
    configure_logging(
        screen_level,
        json=settings.environment == "production",
        stream="stdout" if command == "run" else "stderr",
        log_file=log_file,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `api-assistant` command.

    Exit codes: 0 done, 1 a user error or an unexpected failure, 2 invalid configuration (including a
    platform refusing its token or intents at start-up: one line on stderr, no traceback), 130 interrupted.
    """
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        _configure_logging(args.command, settings)
        return asyncio.run(_main(args, settings))
    except (ConfigError, BaseExceptionGroup) as exc:
        error = startup_error(exc)
        if error is None:
            raise
        if isinstance(exc, BaseExceptionGroup):
            _log_other_failures(exc, error)
        print(str(error), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _log_other_failures(group: BaseExceptionGroup, reported: ConfigError) -> None:
    """Failures that came with the configuration error (another platform's): logged, not lost."""
    _, rest = group.split(lambda exc: exc is reported)
    for other in rest.exceptions if rest else ():
        if not isinstance(other, asyncio.CancelledError):
            structlog.get_logger(__name__).error("startup_failure_also", error=type(other).__name__, exc_info=other)


if __name__ == "__main__":
    sys.exit(main())
