"""Every sentence the assistant says to a user, in one place so tone and wording stay consistent.

Platform adapters render these (Slack mrkdwn, Discord markdown, terminal); they are written in the
common subset: `code`, *emphasis* and plain sentences.
"""

from __future__ import annotations

import shlex
from typing import Literal


def _size(num_bytes: int | float) -> str:
    mib = num_bytes / (1024 * 1024)
    return f"{mib:.1f} MB" if mib >= 0.1 else f"{num_bytes / 1024:.0f} KB"


def file_type_not_allowed(filename: str, allowed: list[str]) -> str:
    """The file's extension is not accepted."""
    return (
        f"I can't index `{filename}`: that file type isn't accepted here. "
        f"Upload one of: {', '.join('.' + a for a in allowed)}."
    )


def file_too_large(filename: str, size: int, max_bytes: int) -> str:
    """The file is over the size limit."""
    return (
        f"`{filename}` is {_size(size)}, over the {_size(max_bytes)} limit for specs. "
        "Split it or ask an admin to raise MAX_FILE_SIZE_MB."
    )


def empty_file(filename: str) -> str:
    """The file has no content."""
    return f"`{filename}` is empty, so there's nothing to index."


def binary_file(filename: str) -> str:
    """The file is not text."""
    return (
        f"`{filename}` looks like a binary file. I read API specs as text: OpenAPI/Swagger (JSON or YAML), "
        "Postman collections, GraphQL SDL or Markdown docs."
    )


def bad_encoding(filename: str, encoding: str) -> str:
    """The file announces an encoding (a byte-order mark) but is not valid text in it."""
    return f"`{filename}` starts like {encoding} text but isn't valid {encoding}. Save it as UTF-8 and upload it again."


def spec_unreadable(filename: str) -> str:
    """A parser failed unexpectedly on the file (the details are logged, never shown)."""
    return (
        f"I couldn't read `{filename}`: something in it tripped up my parser, so I didn't index it. "
        "If it opens fine in other tools, tell whoever runs this bot: the details are in its logs."
    )


def malformed(filename: str, kind: str, line: int, column: int, problem: str) -> str:
    """The JSON/YAML does not parse."""
    where = f" at line {line}, column {column}" if line else ""
    return f"`{filename}` isn't valid {kind}{where}: {problem}. Fix that and upload it again."


def too_deeply_nested(filename: str) -> str:
    """Nesting beyond what a spec needs."""
    return f"`{filename}` is nested too deeply to be a real API spec, so I didn't index it."


def yaml_alias_bomb(filename: str) -> str:
    """YAML aliases that expand to an absurd size, or refer to themselves."""
    return (
        f"`{filename}` uses YAML anchors/aliases that expand to an enormous (or self-referencing) document, "
        "so I refused to index it."
    )


def not_a_spec(filename: str) -> str:
    """Readable, but not a format we know."""
    return (
        f"`{filename}` doesn't look like an API spec I can read. I understand OpenAPI 3.x and Swagger 2.0 "
        "(JSON or YAML), Postman collections (v2.0/v2.1), GraphQL SDL and Markdown API docs."
    )


def spec_without_operations(filename: str) -> str:
    """Parsed, but nothing callable inside."""
    return f"I read `{filename}` but found no operations, requests or endpoints in it, so there's nothing to index."


def external_ref(ref: str) -> str:
    """An external $ref, which is never fetched."""
    return (
        f"The spec refers to an external file (`{ref}`). I never fetch external references; bundle the spec "
        "into one self-contained file (for example with `redocly bundle`) and upload that."
    )


def broken_ref(ref: str, where: str) -> str:
    """A local $ref that points at nothing."""
    return f"The spec refers to `{ref}` (at `{where}`), but that isn't defined anywhere in the file."


def parse_timeout(filename: str, seconds: float) -> str:
    """Reading the file took too long and was stopped."""
    return (
        f"`{filename}` took too long to read (over {seconds:g} seconds), so I stopped and didn't index it. "
        "If it is a real spec, try splitting it into smaller files, or ask an admin to raise PARSE_TIMEOUT_SECONDS."
    )


def parse_memory_exceeded(filename: str) -> str:
    """Reading the file needed too much memory and was stopped."""
    return (
        f"`{filename}` took too much memory to read, so I stopped and didn't index it. "
        "If it is a real spec, try splitting it into smaller files, or ask an admin to raise PARSE_MEMORY_MB."
    )


def spec_not_found(name: str, available: list[str]) -> str:
    """A named spec is not indexed in this workspace."""
    if not available:
        return f"There's no spec called `{name}` here; no specs have been uploaded yet."
    return f"There's no spec called `{name}` here. Indexed specs: {', '.join(f'`{a}`' for a in available)}."


def nothing_indexed() -> str:
    """The workspace has no specs."""
    return (
        "No API specs have been uploaded here yet. Upload an OpenAPI/Swagger file, a Postman collection, "
        "a GraphQL schema or a Markdown API doc, then ask me about it."
    )


def invalid_spec_name(name: str) -> str:
    """A user-chosen spec name we cannot use."""
    return f"`{name}` can't be used as a spec name: use 1-64 letters, digits, dots, dashes or underscores."


def nothing_relevant(question: str) -> str:
    """Retrieval found nothing that matches."""
    return (
        "I couldn't find anything in the uploaded specs that matches that question. "
        'Try naming the resource or action (e.g. "create a customer"), or check `specs` for what\'s indexed.'
    )


def empty_question() -> str:
    """The user sent nothing to answer."""
    return 'Ask me something about your APIs, e.g. "how do I refund a charge?"'


def question_too_long(limit: int) -> str:
    """The question is too long to process."""
    return f"That question is very long. Please keep it under {limit} characters."


def rate_limited(retry_after: float) -> str:
    """The user asked too often."""
    seconds = max(1, round(retry_after))
    return f"You're asking faster than I can keep up. Please try again in {seconds} second{'s' * (seconds != 1)}."


def busy() -> str:
    """At capacity and the queue is full."""
    return "I'm answering a lot of questions right now and couldn't queue yours. Please try again in a minute."


def queued(ahead: int) -> str:
    """A question waits for a generation slot, `ahead` others in front of it."""
    if ahead == 0:
        return "Queued: yours is next, I'll answer shortly."
    return f"Queued: {count(ahead, 'question')} ahead of yours. I'll answer as soon as I get to it."


def waited_too_long() -> str:
    """A queued question waited as long as an answer may take and still got no slot."""
    return "I'm answering a lot of questions right now and yours waited too long in line. Please try again in a minute."


def store_unavailable() -> str:
    """The vector store (a Chroma server) cannot be reached, so a question cannot be searched right now."""
    return (
        "Spec search is temporarily unavailable (I can't reach the vector store), so I can't answer that right now. "
        "Please try again in a minute."
    )


def upload_store_unavailable(filename: str) -> str:
    """An upload failed because the vector store cannot be reached; whatever was indexed before is unchanged."""
    return (
        f"I couldn't index `{filename}`: spec storage is temporarily unavailable (I can't reach the vector store). "
        "Anything indexed before is unchanged; please upload it again in a minute."
    )


def searching() -> str:
    """Status while retrieving and generating."""
    return "Searching the specs…"


def generation_off() -> str:
    """Answers are retrieval-only because no LLM key is configured."""
    return "Generated answers are off (no GROQ_API_KEY), so here are the best-matching operations from the specs."


def generation_off_note() -> str:
    """The help's note when no LLM key is configured (answers say it once per thread)."""
    return (
        "_Generated answers are off here (no GROQ_API_KEY): answers show the best-matching operations from the "
        "specs, with snippets and sources._"
    )


def generation_busy() -> str:
    """Too many answers are being written to get to this one in time; the retrieval answer goes out instead."""
    return (
        "I'm writing a lot of answers right now, so here are the best-matching operations instead. "
        "Ask again in a minute for a written answer."
    )


def generation_failed() -> str:
    """The LLM could not be reached after retries."""
    return "I couldn't reach the language model just now, so here are the best-matching operations instead."


def unexpected_error(ref: str = "") -> str:
    """Something broke; details are in the logs (under request id `ref`), never shown to the user."""
    logged = f"It's been logged (ref `{ref}`)" if ref else "It's been logged"
    return f"Sorry, something went wrong on my side while handling that. {logged}; please try again."


def not_allowed_to_change(name: str, action: str, uploader_name: str) -> str:
    """Someone other than the uploader (and not an admin) tried to forget or replace a spec."""
    who = f"{uploader_name} (who uploaded `{name}`)" if uploader_name else f"the person who uploaded `{name}`"
    text = f"Only {who} or a workspace admin can {action} it."
    if action == "replace":
        text += " To add your file beside it, upload it under another name."
    return text


def spec_quota_reached(limit: int) -> str:
    """The workspace is full."""
    return (
        f"This workspace already has {limit} specs, the most it can hold. "
        "Forget one you no longer need (`forget NAME`), then upload again."
    )


def upload_rate_limited(retry_after: float) -> str:
    """The user uploaded too often."""
    minutes = max(1, round(retry_after / 60))
    if retry_after < 90:
        seconds = max(1, round(retry_after))
        return f"You're uploading specs faster than I can index them. Please try again in {seconds} seconds."
    return f"You're uploading specs faster than I can index them. Please try again in {minutes} minutes."


def spec_busy(name: str) -> str:
    """Another upload (or re-index) of the same spec has held it for too long."""
    return f"`{name}` is still being updated by another upload. Please try again in a few minutes."


def ingest_busy() -> str:
    """Too many specs are being indexed at once and the queue is full."""
    return "I'm indexing a lot of specs right now and couldn't queue yours. Please try again in a minute."


def ingest_queued() -> str:
    """An upload waits for an indexing slot."""
    return "Other specs are being indexed; yours is queued and will start shortly…"


def destinations_changed(old: list[str], new: list[str]) -> str:
    """A replacement changed where requests go: say so, old -> new, so a swapped host can't go unnoticed."""
    before = ", ".join(f"`{d}`" for d in old) or "none"
    after = ", ".join(f"`{d}`" for d in new) or "none"
    return f"⚠️ Requests now go to {after} (was {before})."


def auth_not_described(spec: str) -> str:
    """An auth question about a spec that declares no security schemes (GraphQL SDL never does)."""
    return (
        f"`{spec}` does not describe its authentication: it declares no security schemes, so the credentials "
        "the API expects are in its provider's documentation, not in this spec."
    )


def auth_changed(removed: list[str], added: list[str]) -> str:
    """A replacement changed the auth schemes."""
    before = "; ".join(f"`{a}`" for a in removed) or "none"
    after = "; ".join(f"`{a}`" for a in added) or "none"
    return f"⚠️ Auth changed: {before} → {after}."


def ingest_progress(stage: str, done: int, total: int) -> str:
    """Progress of a long indexing job."""
    if total:
        return f"Indexing: {stage} {done}/{total}…"
    return f"Indexing: {stage}…"


def count(n: int, noun: str) -> str:
    """"1 operation", "7 operations"."""
    return f"{n} {noun}{'s' * (n != 1)}"


def indexed(
    replaced: bool, name: str, label: str, kind: str, operations: int, schemes: int, seconds: float | None = None
) -> str:
    """An upload's summary, e.g. "Indexed `stripe`: Stripe API 2023-08-16 (OpenAPI 3), 468 operations"."""
    verb = "Updated" if replaced else "Indexed"
    text = f"{verb} `{name}`: {label} ({kind}), {count(operations, 'operation')}"
    if schemes:
        text += ", " + count(schemes, "auth scheme")
    if seconds is not None:
        text += f" in {seconds:.1f}s"
    return text + "."


def already_indexed(name: str, operations: int) -> str:
    """The same file was uploaded again under the same name."""
    return f"`{name}` is already indexed with exactly this content ({count(operations, 'operation')})."


def more_warnings(more: int) -> str:
    """The warnings of an upload that were not shown."""
    return f"…and {count(more, 'more warning')}"


def forgot(name: str) -> str:
    """A spec was removed."""
    return f"Forgot `{name}`. Questions here no longer search it."


def search_scope_set(spec: str | None) -> str:
    """`use`: which specs questions search from now on."""
    return f"Questions now search only `{spec}`." if spec else "Questions now search all indexed specs."


def specs_listed() -> str:
    """Heading of the spec list given as an answer ("what specs do you have?")."""
    return "Specs indexed here:"


# The help, the same on every platform (`core.commands.syntax.help_markdown` adds the commands).
HELP_INTRO = (
    "I answer questions about the API specs uploaded here: OpenAPI/Swagger (JSON or YAML), Postman "
    "collections, GraphQL SDL and Markdown API docs."
)
HELP_RULES = "Only the person who uploaded a spec, or a workspace admin, can replace or forget it."


def missing_argument(kind: str, command: str, usage: str, listing: str = "") -> str:
    """A typed command without an argument it needs (`listing`: the command that lists the choices)."""
    text = f"Tell me which {kind} to {command}: `{usage}`"
    return text + (f" (see `{listing}` for the names)." if listing else ".")


def unexpected_words(words: str, usage: str) -> str:
    """A typed command with more than it takes."""
    shown = words if len(words) <= 60 else words[:60] + "…"
    return f"I didn't expect `{shown}` there: the command is `{usage}`."


def unreadable_command() -> str:
    """A typed command with an unclosed quote."""
    return "I couldn't read that command (check the quotes)."


# Replies given without an LLM call, and the note on operations the model named but retrieval did not find.
GREETING_REPLY = (
    "Hi! I answer questions about the API specs uploaded here. Ask me something like "
    '"how do I refund a charge?" or "what auth does the orders API use?"'
)
THANKS_REPLY = "You're welcome! Ask me anything else about your APIs."
HELP_REPLY = (
    "I answer questions about the API specs your team uploads (OpenAPI/Swagger, Postman collections, GraphQL "
    'SDL, Markdown API docs). Ask in plain words, e.g. "how do I create a customer?" or "what does '
    "`POST /v1/refunds` need?\", and I'll point to the exact operations, explain parameters and auth, and "
    "attach a ready-to-run snippet (curl, Python or JavaScript). Upload a spec file to add it, or ask "
    '"what specs do you have?" to see what\'s indexed.'
)
UNVERIFIED_NOTE = "Note: I couldn't find {operations} in the retrieved spec items; double-check before using it."


def backup_refused(source: str, problem: str) -> str:
    """A restore refused before anything was changed."""
    return f"Refusing to restore `{source}`: {problem}. Nothing was changed."


def backup_failed(problem: str) -> str:
    """A backup that could not be written (nothing was pruned)."""
    return f"The backup could not be written: {problem}."


def database_unavailable(where: str, reason: str) -> str:
    """The registry's database could not be opened at start-up (one line for the operator)."""
    return f"Cannot open the registry database at {where}: {reason}. Check DATABASE_URL and that the server is up."


def backup_schedule_invalid(problem: str) -> str:
    """`run` refusing to start because `BACKUP_INTERVAL_HOURS` is set and `BACKUP_DEST` cannot work."""
    return f"Invalid configuration: BACKUP_DEST: scheduled backups (BACKUP_INTERVAL_HOURS) cannot run. {problem}"


def restore_while_running(where: str) -> str:
    """Why `restore` refuses while another command uses the same data (the problem part of `backup_refused`).

    `where` is `DATA_DIR `…`` or `the registry database `…`` (see `core.data_lock.describe`).
    """
    return (
        f"the bot (`api-assistant run`) or another api-assistant command is using {where}; stop every "
        "one of them first (`docker stop`, `fly machine stop`, or Ctrl-C), restore, then start them again"
    )


def data_dir_being_restored(where: str) -> str:
    """Why `run` (or any command that opens the data) refuses to start while a restore is replacing it."""
    where = where[:1].upper() + where[1:]
    return f"{where} is being restored (`api-assistant restore` is running); try again once the restore has finished."


# ---- re-indexing (after an embedding model change, or on an operator's request) ----------------------------


def reindex_command(workspace: str | None = None, spec: str | None = None) -> str:
    """The command an operator runs to re-index (a workspace, a spec), quoted for a shell."""
    words = ["api-assistant", "reindex"]
    if workspace is not None:
        words += ["--workspace", shlex.quote(workspace)]
    if spec is not None:
        words += ["--spec", shlex.quote(spec)]
    return " ".join(words)


def needs_reindex_marker() -> str:
    """Shown beside a spec in spec lists while it is left out of search (vectors of another model)."""
    return "needs re-index"


def specs_need_reindex(names: list[str], in_progress: bool) -> str:
    """A question could only be answered from specs whose vectors came from another embedding model."""
    listed = ", ".join(f"`{n}`" for n in names)
    one = len(names) == 1
    text = (
        f"{listed} {'was' if one else 'were'} indexed with a different embedding model, so I can't search "
        f"{'it' if one else 'them'} until {'it is' if one else 'they are'} re-indexed."
    )
    if in_progress:
        return text + " That's under way right now; please ask again in a minute."
    return text + f" Ask whoever runs this bot to run `{reindex_command()}`."


def workspace_not_found(workspace: str, known: list[str]) -> str:
    """An operator named a workspace that has no specs."""
    if not known:
        return f"There's no workspace `{workspace}`: no specs have been indexed in any workspace yet."
    return f"There's no workspace `{workspace}` with specs. Workspaces: {', '.join(f'`{k}`' for k in known)}."


def original_missing(name: str) -> str:
    """A spec's uploaded file is gone from the store, so it cannot be rebuilt (its index stays as it is)."""
    return f"the uploaded file of `{name}` is missing from the store; upload it again to rebuild it"


def original_changed(name: str) -> str:
    """The stored file no longer matches the record's checksum (damaged storage)."""
    return f"the stored file of `{name}` no longer matches its checksum; upload it again to rebuild it"


def reindex_unexpected(event: str) -> str:
    """A spec failed to re-index for a reason nobody planned for; the log has the traceback."""
    return f"an unexpected error (the log line `{event}` has the details)"


def nothing_to_reindex() -> str:
    """`reindex` found no specs at all."""
    return "Nothing to re-index: no specs have been indexed yet."


def rerank_unavailable(has_key: bool) -> str:
    """`eval --rerank` without a reranker: no Groq key, or RERANK_ENABLED off."""
    if not has_key:
        return (
            "`eval --rerank` measures the LLM reranker, which needs Groq: set GROQ_API_KEY (and leave "
            "RERANK_ENABLED on), or run `eval` without `--rerank` to measure retrieval alone."
        )
    return "`eval --rerank` measures the LLM reranker, which RERANK_ENABLED=false turns off: unset it for this run."


def reindex_progress(
    position: int, total: int, where: str, stage: str, detail: str = "", operations: int = 0, seconds: float = 0.0
) -> str:
    """One line per spec of a re-index: started, done, skipped or failed."""
    head = f"[{position}/{total}] {where}"
    if stage == "started":
        return f"{head}: re-indexing…"
    if stage == "indexed":
        return f"{head}: re-indexed, {operations} operation{'s' * (operations != 1)} in {seconds:.1f}s"
    if stage == "skipped":
        return f"{head}: skipped ({detail})"
    return f"{head}: failed, {detail}; its previous index is still live"


def reindex_summary(indexed: int, failed: int, skipped: int, seconds: float) -> str:
    """The last line of a re-index."""
    text = f"Re-indexed {indexed} spec{'s' * (indexed != 1)} in {seconds:.1f}s"
    if skipped:
        text += f", {skipped} skipped"
    if failed:
        text += f"; {failed} failed (each kept its previous index): see the lines above"
    return text + "."


def reindex_skipped(why: Literal["forgotten", "current", "changed"]) -> str:
    """Why a spec chosen for re-indexing was left alone."""
    return {
        "forgotten": "forgotten meanwhile",
        "current": "already re-uploaded with the current model",
        "changed": "replaced or forgotten while it was being rebuilt; that change stands",
    }[why]


def rerank_fallbacks_in_eval(count: int) -> str:
    """`eval --rerank`: some reranks fell back to the fused order, so the reranked figures understate it."""
    return (
        f"{count} rerank{'s' * (count != 1)} fell back to the fused order (timeout, rate limit or unusable reply; "
        "see the `rerank_fallback` log lines), so the reranked figures understate the reranker. A longer "
        "RERANK_TIMEOUT_SECONDS for the run may help."
    )
