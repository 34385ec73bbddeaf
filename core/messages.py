"""Every sentence the assistant says to a user, in one place so tone and wording stay consistent.

Platform adapters render these (Slack mrkdwn, Discord markdown, terminal); they are written in the
common subset: `code`, *emphasis* and plain sentences.
"""

from __future__ import annotations

import re
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
        "Postman collections, GraphQL SDL, or API docs in Markdown, PDF or Word (.docx)."
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
        "(JSON or YAML), Postman collections (v2.0/v2.1), GraphQL SDL, and API docs in Markdown, PDF or Word (.docx)."
    )


def not_a_document(filename: str, kind: str) -> str:
    """A `.pdf` or `.docx` whose content is something else (text renamed, another format)."""
    return (
        f"`{filename}` is named like a {kind} but isn't one inside. Export it as a {kind} again, or upload it "
        "under the extension that matches what it really is."
    )


def document_damaged(filename: str, kind: str) -> str:
    """A PDF or Word file that is truncated or corrupt (the reader's error is logged, never shown)."""
    return (
        f"`{filename}` looks like a {kind}, but it is damaged or incomplete, so I couldn't read it. "
        f"Open it in a {kind} viewer to check it, export it again and upload the new copy."
    )


def encrypted_pdf(filename: str) -> str:
    """A password-protected PDF."""
    return (
        f"`{filename}` is an encrypted (password-protected) PDF, and I can't read an encrypted PDF. "
        "Save a copy without the password (or export the docs as Markdown) and upload that."
    )


def document_too_many_pages(filename: str, pages: int, limit: int) -> str:
    """A PDF over the page limit."""
    return (
        f"`{filename}` has {pages:,} pages; I read PDFs of up to {limit:,} pages. "
        "Upload the API reference part on its own (or split the manual into smaller PDFs)."
    )


def document_too_much_text(filename: str, limit: int) -> str:
    """A PDF or Word file holding more text than an API doc would."""
    return (
        f"`{filename}` holds more than {limit:,} characters of text, more than I index from one document. "
        "Upload the API reference part on its own, or split it into smaller files."
    )


def document_bomb(filename: str, kind: str) -> str:
    """A PDF or .docx whose compressed parts unpack to far more than a real document (or that has too many)."""
    return (
        f"`{filename}` unpacks to far more data than a real {kind} (or into too many parts), "
        f"so I refused to open it. If it is a real document, save it again as a {kind} and upload that."
    )


def document_without_text(filename: str, kind: str) -> str:
    """A PDF or Word file with no text to read (scanned pages are images)."""
    return (
        f"`{filename}` has no text I can read: it is empty, or its pages are images (a scan). "
        f"I don't read text in images; upload a {kind} with real text, or the docs as Markdown."
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


def channel_default_set(spec: str) -> str:
    """`use NAME`: the channel's default from now on."""
    return (
        f"Questions here now search `{spec}` first (for everyone in this channel). When `{spec}` clearly doesn't "
        "cover a question, the other specs are searched too, and the answer says so. `use all` undoes it."
    )


def channel_default_shown(spec: str | None) -> str:
    """`use` alone: the channel's default, if any."""
    if spec is None:
        return "This channel has no default spec: questions search every spec. `use NAME` picks one."
    return f"Questions here search `{spec}` first. `use all` makes them search every spec again."


def channel_default_cleared(spec: str | None) -> str:
    """`use all`: the channel's default is gone (or there was none)."""
    if spec is None:
        return "This channel had no default spec: questions already search every spec."
    return f"`{spec}` is no longer this channel's default: questions here search every spec again."


def channel_default_reserved(word: str) -> str:
    """A spec named like the word that clears the default cannot be one."""
    return f"`{word}` means every spec here, so a spec called `{word}` can't be a channel's default."


def channel_default_needs_channel() -> str:
    """`use` where there is no channel to remember it for."""
    return "A default spec belongs to a channel; there's no channel here. Name the spec in the question instead."


def default_spec_left(spec: str) -> str:
    """An answer in a channel with a default that searched every spec, because the default did not fit."""
    return f"`{spec}` (this channel's default) doesn't seem to cover this, so every spec was searched."


def default_marker() -> str:
    """How a spec list marks the channel's default."""
    return "this channel's default"


def private_marker() -> str:
    """How a spec list marks a spec only this channel sees."""
    return "only this channel"


def private_needs_chat() -> str:
    """`upload --private` where there is no chat channel (the terminal, the command line)."""
    return "Private specs are for chat channels and DMs; here every spec is already yours alone."


def spec_name_taken(name: str) -> str:
    """An upload's name is used by a spec this channel does not see (private to another channel)."""
    return (
        f"The name `{name}` is already used by a spec in this workspace that isn't visible here. "
        "Upload it under another name."
    )


def spec_is_shared(name: str) -> str:
    """`upload --private` under the name of a spec the whole workspace sees."""
    return (
        f"`{name}` is shared with the whole workspace, so it can't be replaced by a private copy. "
        "Upload the private copy under another name."
    )


def made_private(name: str) -> str:
    """The upload confirmation's button made a spec private."""
    return f"`{name}` is now visible only in this channel."


def made_shared(name: str) -> str:
    """The upload confirmation's button shared a private spec with the workspace."""
    return f"`{name}` is now shared with the whole workspace."


def uploaded_private(name: str) -> str:
    """Said under the upload reply of a private spec."""
    return f"`{name}` is visible only in this channel."


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


# ---- spec versions and diffs -------------------------------------------------------------------------------

# Each diff rule in words; `{s}` is the parameter / field / status / scheme, `{b}` and `{a}` the values before
# and after. Rules not listed read as their id with dashes turned to spaces.
CHANGE_TEXT: dict[str, str] = {
    "api-removed-without-deprecation": "operation removed",
    "api-path-removed-without-deprecation": "operation removed (its whole path is gone)",
    "api-removed-after-deprecation": "operation removed (it was deprecated)",
    "endpoint-added": "operation added",
    "api-path-added": "operation added (new path)",
    "api-server-changed": "base URL changed: {b} → {a}",
    "api-server-added": "base URL added: {a}",
    "api-global-security-added": "auth now required: {a}",
    "api-global-security-changed": "auth changed: {b} no longer enough (now {a})",
    "api-global-security-scope-added": "auth needs more scopes: {b} → {a}",
    "api-security-added": "auth now required: {a}",
    "api-security-changed": "auth changed: {b} no longer enough (now {a})",
    "api-security-scope-added": "auth needs more scopes: {b} → {a}",
    "api-security-component-changed": "auth scheme `{s}` changed: {b} → {a}",
    "request-parameter-removed": "parameter `{s}` removed",
    "new-required-request-parameter": "new required parameter `{s}`",
    "new-request-path-parameter": "new path parameter `{s}`",
    "new-optional-request-parameter": "new optional parameter `{s}`",
    "request-parameter-became-required": "parameter `{s}` became required",
    "request-parameter-became-optional": "parameter `{s}` became optional",
    "request-body-removed": "request body removed",
    "added-required-request-body": "required request body added",
    "request-body-became-required": "request body became required",
    "request-body-media-type-removed": "request content type `{s}` no longer accepted",
    "request-property-removed": "request field `{s}` removed",
    "new-required-request-property": "new required request field `{s}`",
    "request-property-became-required": "request field `{s}` became required",
    "request-property-added": "request field `{s}` added",
    "response-success-status-removed": "success response `{s}` removed",
    "response-media-type-removed": "response content type `{s}` removed",
    "response-required-property-removed": "response field `{s}` removed",
    "response-optional-property-removed": "response field `{s}` removed",
    "response-property-became-optional": "response field `{s}` may now be missing",
    "response-property-added": "response field `{s}` added",
    "request-method-changed": "method changed: {b} → {a}",
    "request-url-changed": "URL changed: {b} → {a}",
    "request-removed": "request removed",
    "request-added": "request added",
    "request-body-key-removed": "body key `{s}` removed",
    "request-body-key-added": "body key `{s}` added",
    "graphql-field-removed": "field removed",
    "graphql-field-added": "field added",
    "graphql-field-type-changed": "return type changed: `{b}` → `{a}`",
    "graphql-argument-removed": "argument `{s}` removed",
    "graphql-new-required-argument": "new required argument `{s}: {a}`",
    "graphql-new-optional-argument": "new optional argument `{s}: {a}`",
    "graphql-argument-became-required": "argument `{s}` became required (`{b}` → `{a}`)",
    "graphql-argument-type-changed": "argument `{s}` type changed: `{b}` → `{a}`",
}
_FIELD_RULE = re.compile(r"^(request|response)-(parameter|property|body)-(.+)$")


def change_text(rule: str, subject: str, before: str, after: str) -> str:
    """One change in words, e.g. "request field `address.city` removed"."""
    template = CHANGE_TEXT.get(rule)
    if template is not None:
        return template.format(s=subject, b=before or "none", a=after or "none")
    text = rule.replace("-", " ")
    match = _FIELD_RULE.match(rule)
    if match:
        side, what, rest = match.groups()
        noun = {"parameter": "parameter", "property": f"{side} field", "body": f"{side} body"}[what]
        text = f"{noun}" + (f" `{subject}`" if subject else "") + " " + rest.replace("-", " ")
    if before or after:
        text += f": {before or 'none'} → {after or 'none'}"
    return text


def rule_name(rule: str) -> str:
    """A rule as a short phrase for counts ("operation added", "response property description updated")."""
    template = CHANGE_TEXT.get(rule, "")
    return template if template and "{" not in template else rule.replace("-", " ")


def version_label(number: int, label: str) -> str:
    """"version 3 (Stripe API 2023-10-16)"."""
    return f"version {number}" + (f" ({label})" if label else "")


def diff_headline(name: str, before: str, after: str, breaking: int, added: int, removed: int, other: int) -> str:
    """The first line of a diff: which versions, and how much changed."""
    parts = [count(breaking, "breaking change"), f"{added} operations added", f"{removed} removed"]
    parts.append(count(other, "other change"))
    return f"Changes in `{name}` from {before} to {after}: " + ", ".join(parts) + "."


def diff_nothing(name: str, before: str, after: str) -> str:
    """Two versions with no difference the diff can see."""
    return f"No API changes in `{name}` from {before} to {after}."


def diff_breaking_heading() -> str:
    """Before the list of breaking changes."""
    return "**Breaking changes**"


def diff_other_heading() -> str:
    """Before the counts of non-breaking changes."""
    return "**Other changes**"


def diff_more_breaking(more: int, attached: bool) -> str:
    """The list of breaking changes was cut."""
    where = " (all of them are in the attached report)" if attached else ""
    return f"…and {count(more, 'more breaking change')}{where}."


def diff_partial() -> str:
    """A bound stopped some schema comparisons."""
    return (
        "Some very large or deeply nested schemas were compared only in part (fields past the limits were "
        "left out rather than reported as removed)."
    )


def diff_only_one_version(name: str) -> str:
    """A diff of a spec with a single version."""
    return (
        f"`{name}` has only one version so far, so there's nothing to compare. Upload a newer file under the "
        f"same name and I'll show what changed."
    )


def diff_bad_version(name: str, given: str, numbers: list[int]) -> str:
    """A `--from` / `--to` that names no kept version."""
    kept = ", ".join(str(n) for n in numbers)
    return f"`{name}` has no version `{given}`. Versions kept: {kept} (the highest is the current one)."


def diff_same_version(name: str, number: int) -> str:
    """From and to are the same version."""
    return f"That compares version {number} of `{name}` with itself; pick two different versions."


def diff_original_missing(name: str, number: int) -> str:
    """A kept version's original cannot be read."""
    return f"The uploaded file of version {number} of `{name}` is missing, so it cannot be compared."


def upload_changes_heading(count_breaking: int) -> str:
    """Before the summary of what a re-upload changed."""
    if count_breaking:
        return f"⚠️ {count(count_breaking, 'breaking change')} since the previous version:"
    return "What changed since the previous version:"


def versions_text(versions: int) -> str:
    """"3 versions kept"."""
    return f"{count(versions, 'version')} kept"


def diff_see_more(name: str) -> str:
    """Where the whole diff of an upload is."""
    return f"Ask `/api diff {name}` (or `api-assistant diff {name}`) for the full list."


def diff_verdict(breaking: int, before: str) -> str:
    """The first line of an answer to "is the new version breaking for us?"."""
    if breaking:
        return f"**Yes**: {count(breaking, 'breaking change')} for a client written against {before}."
    return f"**No**: nothing here breaks a client written against {before}."


def diff_which_spec(names: list[str]) -> str:
    """A question about changes that names no spec, in a workspace with several."""
    listed = ", ".join(f"`{n}`" for n in names[:20]) + (", …" if len(names) > 20 else "")
    return f"Which spec do you mean? Name one of {listed}, e.g. \"what changed in {names[0]}?\""


def comparing_versions() -> str:
    """Status while a question about changes is answered from the diff."""
    return "Comparing versions…"


def report_caption() -> str:
    """Shown with the attached full report of a diff."""
    return "The full report: every change, breaking ones first."


def report_not_attached() -> str:
    """The full report could not be uploaded (the summary above it was sent)."""
    return "I couldn't attach the full report this time; ask again to get it."


# ---- checking a request or a response against the spec (core.checks) ----------------------------------------

CHECK_HINT = (
    "Paste a curl command, an HTTP request (`POST /pet`, headers, a blank line, the body), or a JSON body "
    "with the operation (`POST /pet` or its operationId) on the line before it."
)


def nothing_to_check() -> str:
    """A check with no request, response or body in it."""
    return "I didn't find a request to check in that. " + CHECK_HINT


def nothing_to_check_curl() -> str:
    """A curl command without a URL."""
    return "That curl command has no URL, so I can't tell which operation it calls. " + CHECK_HINT


def check_too_long(limit: int) -> str:
    """The pasted request is over the size a check reads."""
    return f"That's over {limit:,} characters, more than I check at once. Trim the body to the part that fails."


def check_from_file(what: str) -> str:
    """Curl reads part of the request from a file, which a check never opens."""
    return f"The {what} come from a file (`@file`), which I can't see, so they weren't checked."


def curl_content_type(content_type: str) -> str:
    """The content type curl sends on its own (shown in the checked request)."""
    return f"Content-Type: {content_type}  (sent by curl itself)"


def check_out_of_time(seconds: float) -> str:
    """Validation stopped at its deadline."""
    return f"Checking took longer than {seconds:g} s, so I stopped: the problems above are the ones found so far."


def check_schema_recursive() -> str:
    """The schema refers to itself without end."""
    return "Part of this schema refers to itself without end, so it couldn't be checked."


def check_pattern_skipped(pattern: str) -> str:
    """A spec regex was not applied (too long, invalid, or too slow)."""
    return f"The spec's pattern `{pattern}` wasn't checked (too long, not a valid regex here, or too slow to run)."


def check_missing_field() -> str:
    """A required body field is missing."""
    return "missing required field"


def check_unknown_field() -> str:
    """A body field the schema does not allow."""
    return "unknown field: the schema allows no other fields here"


def check_wrong_type(expected: list[str], got: str) -> str:
    """A value of the wrong JSON type."""
    return f"wrong type: expected {' or '.join(expected)}, got {got}"


def check_not_in_enum(value: str | None, allowed: list[str], more: bool) -> str:
    """A value outside its enum (the value is None when it is a credential, never quoted)."""
    listed = ", ".join(f"`{a}`" for a in allowed) + (", …" if more else "")
    return f"{f'`{value}` is ' if value is not None else ''}not one of the allowed values: {listed}"


def check_pattern(pattern: str) -> str:
    """A string not matching its pattern."""
    return f"doesn't match the pattern `{pattern}`"


_BOUND_WORDS = {
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "more than {}",
    "exclusiveMaximum": "less than {}",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
    "minProperties": "at least {} fields",
    "maxProperties": "at most {} fields",
    "multipleOf": "a multiple of {}",
    "minContains": "at least {} matching items",
    "maxContains": "at most {} matching items",
}


def check_bounds(keyword: str, limit: object, size: int | None) -> str:
    """A value outside its bounds."""
    if keyword == "uniqueItems":
        return "out of bounds: the items must all be different"
    rule = _BOUND_WORDS.get(keyword, keyword + " {}").format(limit)
    counted = size is not None and keyword.endswith(("Length", "Items", "Properties"))
    return f"out of bounds: must be {rule}" + (f" (it has {size})" if counted else "")


def check_read_only() -> str:
    """A read-only field sent in a request."""
    return "read-only field: the server sets it, don't send it"


def check_write_only() -> str:
    """A write-only field returned in a response."""
    return "write-only field: a response shouldn't contain it"


def check_not_allowed(keyword: str) -> str:
    """A value refused by another schema rule."""
    return f"not allowed here (the schema's `{keyword}` rule)"


def check_ambiguous() -> str:
    """A value matching more than one `oneOf` alternative."""
    return "matches more than one of the allowed shapes, where exactly one is expected"


def check_no_alternative() -> str:
    """A value matching none of the allowed shapes."""
    return "matches none of the allowed shapes"


def check_placeholder(text: str) -> str:
    """A placeholder left where a real value belongs."""
    return f"`{text}` is still a placeholder: put the real value there"


def check_missing_parameter() -> str:
    """A required parameter is missing."""
    return "missing required parameter"


def check_missing_body(content_types: list[str]) -> str:
    """A required body is missing."""
    return "this operation needs a body (" + ", ".join(f"`{c}`" for c in content_types) + ")"


def check_invalid_json(line: int, column: int, problem: str) -> str:
    """The body is not valid JSON."""
    return f"the body isn't valid JSON (line {line}, column {column}: {problem})"


def check_deep_body(limit: int) -> str:
    """The body nests deeper than a check reads."""
    return f"the body is nested more than {limit} levels deep, so it wasn't checked"


def check_content_type(sent: str, declared: list[str], by_curl: bool, looks_json: bool) -> str:
    """The request is sent with a content type the operation does not take, or a JSON body labelled as a form."""
    takes = ", ".join(f"`{d}`" for d in declared)
    hint = " Add `-H 'Content-Type: application/json'` (or use `--json`)." if by_curl and looks_json else ""
    if by_curl and looks_json and any(d.split(";")[0].strip() == sent for d in declared):
        return (
            f"wrong content type: this JSON body goes out as `{sent}` (curl's default for `-d`), "
            f"so it's read as a form.{hint}"
        )
    sent_text = (f"`{sent}`" + (" (curl's default for `-d`)" if by_curl else "")) if sent else "no Content-Type"
    return f"wrong content type: sent {sent_text}, but this operation takes {takes}.{hint}"


def check_no_body_expected() -> str:
    """A body sent to an operation that documents none."""
    return "This operation documents no request body, so the body you send isn't checked (and may be ignored)."


def check_missing_auth(ways: list[str]) -> str:
    """No credentials the operation accepts were sent."""
    return "missing auth: send " + " or ".join(ways)


def check_wrong_auth(sent: str, ways: list[str]) -> str:
    """Credentials of another kind than the operation accepts."""
    return f"wrong auth: sent `Authorization: {sent} …`, but this operation takes " + " or ".join(ways)


def check_other_host(host: str, servers: list[str]) -> str:
    """The request goes to a host the spec does not name."""
    return f"The request goes to `{host}`, which isn't one of the spec's servers ({', '.join(servers[:3])})."


def check_no_response(status: str, declared: list[str]) -> str:
    """A response check for a status the operation does not document."""
    listed = ", ".join(f"`{d}`" for d in declared) or "none"
    return (
        f"This operation documents no `{status}` response (it documents {listed}), "
        "so there's nothing to check against."
    )


def check_no_schema(what: str) -> str:
    """The matching request or response has no schema."""
    return f"The spec gives no schema for this {what}, so its contents weren't checked."


def check_guessed(label: str) -> str:
    """The operation was found from the body alone."""
    return f"No operation was named, so I matched the body to `{label}`: name it (`POST /path`) if that's not it."


def check_operation_not_found(method: str, path: str, specs: list[str]) -> str:
    """No operation of the spec(s) has this method and path."""
    where = ", ".join(f"`{s}`" for s in specs[:5]) or "the specs here"
    return (
        f"I couldn't find `{method} {path}` in {where}. "
        "Check the path (and the API version in it), or pick the spec with `spec:NAME`."
    )


def check_operation_id_not_found(operation: str, specs: list[str]) -> str:
    """No operation has this operationId."""
    where = ", ".join(f"`{s}`" for s in specs[:5]) or "the specs here"
    return f"No operation is called `{operation}` in {where}. Name it as `METHOD /path` instead, or check the spelling."


def check_method_not_allowed(method: str, path: str, allowed: list[str], spec: str) -> str:
    """The path exists but not with this method."""
    return f"`{path}` in `{spec}` takes {', '.join(allowed)}, not {method}."


def check_not_checkable(name: str, format_label: str) -> str:
    """A named spec whose format has no schemas to check against."""
    return f"`{name}` is a {format_label}: I can only check requests against OpenAPI and Swagger specs."


def check_nothing_checkable() -> str:
    """The workspace has no OpenAPI/Swagger spec."""
    return "None of the specs here is an OpenAPI or Swagger spec, which is what I check requests against."


def check_valid(what: str) -> str:
    """A valid request or response."""
    return f"✅ This {what} is valid for the spec."


def check_problems(count: int, what: str) -> str:
    """The heading of a list of problems."""
    return f"❌ I found {count} problem{'s' * (count != 1)} with this {what}:"


def check_more_problems(count: int) -> str:
    """Problems beyond those listed."""
    return f"…and {count} more."


def check_checked_against(label: str, spec: str, status: str = "") -> str:
    """Which operation the check used."""
    return f"Checked against `{label}`" + (f" → `{status}` response" if status else "") + f" in `{spec}`."


def checking() -> str:
    """Progress while a pasted request is checked."""
    return "Checking your request against the spec…"


def check_shown() -> str:
    """The heading over the request as checked (credentials masked)."""
    return "What I checked (credentials masked):"


# ---- snippets in another language ---------------------------------------------------------------------------


def snippet_language_substituted(asked: str, available: list[str], used: str) -> str:
    """A question asked for a snippet language we do not write."""
    return (
        f"I can't write {asked} snippets yet (I write {_or_list(available)}), so here it is in {used}, "
        "the closest."
    )


def snippet_heading(label: str, language: str) -> str:
    """Above a snippet shown in another language on request."""
    return f"`{label}` in {language}:"


def snippet_unknown_language(asked: str, available: list[str]) -> str:
    """A snippet was asked for in a language we do not write."""
    return f"I can't write snippets in `{asked}`; I write {_or_list(available)}."


def snippet_spec_gone(spec: str) -> str:
    """A "show in another language" click on an answer whose spec was forgotten since."""
    return (
        f"The spec `{spec}` isn't indexed here any more, so I can't write that snippet. "
        "Ask again to get a new answer."
    )


def snippet_operation_gone(spec: str) -> str:
    """A click on an answer whose operation is no longer in the spec (it was re-uploaded without it)."""
    return (
        f"That operation isn't in `{spec}` any more (the spec changed since this answer). "
        "Ask again to get a new answer."
    )


def _or_list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" and {items[-1]}"


# ---- diagrams (core.diagrams) --------------------------------------------------------------------------------


def diagram_more_schemes(count: int) -> str:
    """Some ways to authenticate were left out of an auth diagram."""
    return f"{count} more way{'s' if count != 1 else ''} to authenticate not drawn."


def diagram_no_auth() -> str:
    """The spec declares no authentication."""
    return "The spec declares no authentication."


def diagram_more_resources(shown: int, total: int, operations: int) -> str:
    """An overview that shows only the largest resources."""
    return f"Showing the {shown} largest of {total} resources; {operations} operations are in the others."


def diagram_more_schemas(count: int) -> str:
    """A schema diagram that stopped at its node limit."""
    return f"{count} more referenced schema{'s' if count != 1 else ''} not drawn (limit reached)."


def diagram_depth_cut(depth: int) -> str:
    """A schema diagram that stopped at its depth."""
    return f"References are followed {depth} levels deep."


def diagram_caption(kind: str, name: str, subject: str, notes: tuple[str, ...]) -> str:
    """The text sent with a diagram."""
    what = {"auth": "Auth flow", "overview": "Overview"}.get(kind, f"Schema `{subject}`")
    text = f"{what} of `{name}`, drawn from the spec."
    return text + ("\n" + "\n".join(f"_{n}_" for n in notes) if notes else "")


def diagram_saved(path: str) -> str:
    """The terminal saved a diagram or report."""
    return f"Saved to {path}"


def diagram_usage() -> str:
    """What `diagram` takes."""
    return "Say what to draw: `auth`, `overview`, or the name of a schema (e.g. `/api diagram stripe customer`)."


def diagram_no_schemas(name: str, format_label: str) -> str:
    """Schema diagrams need schemas."""
    return (f"`{name}` is a {format_label}: it has no schemas I can draw. Try `auth` or `overview`, or draw a schema "
            "of an OpenAPI, Swagger or GraphQL spec.")


def diagram_schema_not_found(schema: str, name: str, close: list[str]) -> str:
    """No schema of that name."""
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    return f"`{name}` has no schema called `{schema}`.{hint}"


def diagram_renderer_missing() -> str:
    """Graphviz is not installed where the bot runs."""
    return "I can't draw diagrams here: Graphviz (`dot`) isn't installed on the server. Ask whoever runs me."


def diagram_timeout() -> str:
    """Rendering took too long."""
    return "That diagram took too long to draw. Try a smaller one (a schema instead of the overview)."


def diagram_too_large() -> str:
    """The diagram would be too big."""
    return "That diagram is too large to draw. Try a smaller one (a schema instead of the overview)."


def diagram_failed() -> str:
    """Graphviz failed."""
    return "I couldn't draw that diagram; it has been logged."


def drawing() -> str:
    """Status while a diagram is drawn."""
    return "Drawing…"


# ---- spec quality reports (core.lint) -------------------------------------------------------------------------

_LINT_KINDS = {
    "invalid": ("problem against the OpenAPI/Swagger schema", "problems against the OpenAPI/Swagger schema"),
    "operation-without-description": ("operation has no description", "operations have no description"),
    "operation-without-summary": ("operation has no summary", "operations have no summary"),
    "write-without-security": ("write operation declares no auth", "write operations declare no auth"),
    "no-error-responses": ("operation documents no error response", "operations document no error response"),
    "parameter-without-description": ("parameter has no description", "parameters have no description"),
    "field-without-description": ("field has no description", "fields have no description"),
    "request-without-example": ("request body has no example", "request bodies have no example"),
    "response-without-example": ("success response has no example", "success responses have no example"),
    "unused-schema": ("schema is never used", "schemas are never used"),
    "undefined-reference": ("$ref points nowhere", "$refs point nowhere"),
    "duplicate-operation-id": ("operationId is used twice", "operationIds are used twice"),
}


def lint_count(kind: str, n: int) -> str:
    """"12 operations have no description"."""
    one, many = _LINT_KINDS.get(kind, (kind, kind))
    return f"{n} {one if n == 1 else many}"


def lint_upload_clean() -> str:
    """An upload whose spec has no coverage gaps."""
    return "Quality check: every operation, parameter and field is described."


def lint_upload_more(name: str) -> str:
    """Where the full quality report is."""
    return f" (`/api lint {name}` for the full report)"


def lint_headline(name: str, format_label: str, operations: int, total: int) -> str:
    """The first line of a quality report."""
    found = "nothing to report" if not total else count(total, "finding")
    return f"Quality report for `{name}` ({format_label}, {count(operations, 'operation')}): {found}."


def lint_valid(version: str, errors: int) -> str:
    """The structural validation's verdict."""
    if not errors:
        return f"Valid {version} (openapi-spec-validator)."
    return f"Not valid {version}: {count(errors, 'problem')} against the schema (openapi-spec-validator)."


def lint_validation_skipped(version: str, note: str) -> str:
    """Validation could not be done."""
    return f"Structural validation{f' ({version})' if version else ''} was not done: {note}."


def lint_not_validated(format_label: str) -> str:
    """Formats without a schema to validate against."""
    return f"A {format_label} has no schema to validate against; coverage only."


def lint_and_more(n: int) -> str:
    """Findings not listed."""
    return f"…and {n} more"


def linting() -> str:
    """Status while a spec is checked."""
    return "Checking the spec…"


def diagram_which_spec(names: list[str]) -> str:
    """A drawing request that names no spec, in a workspace with several."""
    return "Which spec should I draw? Name one of: " + ", ".join(f"`{n}`" for n in names[:20]) + "."


def lint_report_caption(name: str) -> str:
    """Shown with the attached full quality report."""
    return f"The full quality report for `{name}`: every finding with its location."
