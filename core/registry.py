"""The spec registry: which specs each workspace has, which index version is live, and the originals.

The registry is the source of truth for what is visible: documents in the vector store only count when
the registry points at their index version. Uploaded originals are kept so the index can be rebuilt.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from core import database, messages
from core.database import channel_defaults, index_versions, originals, spec_versions, specs
from core.database import documents as documents_table
from core.documents import Document
from core.errors import ConfigError
from core.models import ApiSpec, SpecFormat, from_dict, to_dict


class OriginalMissingError(FileNotFoundError):
    """A record's uploaded original is not in the store, so its spec cannot be rebuilt from it."""


@dataclass(frozen=True)
class SpecRecord:
    """One indexed spec in one workspace."""

    workspace: str
    name: str
    format: SpecFormat
    title: str
    version: str
    content_hash: str
    index_version: str
    operation_count: int
    scheme_count: int
    uploaded_by: str
    platform: str
    indexed_at: float
    original_path: str
    filename: str
    header: ApiSpec  # the spec without operations: servers, schemes and default security, for snippets
    uploader_name: str = ""  # the uploader as the platform displayed them, for "only X can replace it"
    destinations: tuple[str, ...] = ()  # every base URL requests go to (see `destinations`)
    embedding_model: str = ""  # the model whose vectors this index version holds (`ModelIdentity.text`)
    channel: str = ""  # "": the whole workspace sees it; else the one channel (or DM) it is private to

    @property
    def label(self) -> str:
        """`Stripe API 2023-08-16`-style display name."""
        return f"{self.title} {self.version}".strip()

    @property
    def private(self) -> bool:
        """Whether only one channel sees it."""
        return bool(self.channel)

    def visible_in(self, channel: str) -> bool:
        """Whether a question or command from `channel` may see this spec."""
        return not self.channel or self.channel == channel


@dataclass(frozen=True)
class SpecVersion:
    """One uploaded version of a spec, kept as metadata plus its original (only the live one is searchable)."""

    workspace: str
    name: str
    number: int  # 1, 2, 3, ... per spec name; the highest is the live version
    format: SpecFormat
    title: str
    version: str  # what the spec itself says (`info.version`)
    content_hash: str
    original_path: str
    filename: str
    operation_count: int
    uploaded_by: str
    uploader_name: str
    platform: str
    indexed_at: float

    @property
    def label(self) -> str:
        """`Stripe API 2023-08-16`-style display name."""
        return f"{self.title} {self.version}".strip()


_URL_ORIGIN = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]{0,20}://[^/?#\s]{0,255}|\{\{[^{}\s]{1,100}\}\})")


@dataclass(frozen=True)
class RegistryTotals:
    """What the registry holds across all workspaces."""

    workspaces: int
    specs: int
    documents: int
    operations: int


def destinations(spec: ApiSpec) -> tuple[str, ...]:
    """Where the spec sends requests: its servers, operation-level servers and the hosts of Postman URLs.

    Compared across versions so a replacement that swaps the host is announced to the team.
    """
    found = {server.rstrip("/") for server in spec.servers}
    for operation in spec.operations:
        found.update(server.rstrip("/") for server in operation.servers)
        if operation.url:
            match = _URL_ORIGIN.match(operation.url)
            if match:
                found.add(match.group(0))
    return tuple(sorted(d for d in found if d))


def spec_header(spec: ApiSpec) -> ApiSpec:
    """The parts of a spec that answers need besides the operation itself."""
    return replace(spec, operations=(), description=spec.description[:2000])


class SpecRegistry:
    """Spec records, stored documents and uploaded originals, in one database (see `core.database`).

    SQLite under `data_dir` by default; PostgreSQL at `database_url`, shared by replicas. Every method is one
    transaction, so a failure never leaves a half-written change.
    """

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self._data_dir = data_dir
        try:
            self._engine = database.open_database(data_dir, database_url)
        except (sa.exc.SQLAlchemyError, ValueError) as exc:
            where = database.describe(data_dir, database_url)
            raise ConfigError(messages.database_unavailable(where, database.failure_reason(exc))) from None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (backups copy through it)."""
        return self._engine

    def lock(
        self, name: str, *, shared: bool = False, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """A lock held across every process sharing this registry (see `core.database.named_lock`)."""
        return database.named_lock(self._engine, self._data_dir, name, shared=shared, timeout=timeout)

    def ping(self) -> None:
        """Raise unless the database answers (readiness)."""
        with database.read(self._engine) as db:
            db.execute(sa.text("SELECT 1"))

    def get(self, workspace: str, name: str) -> SpecRecord | None:
        """The record for one spec, if indexed."""
        with database.read(self._engine) as db:
            row = db.execute(sa.select(specs).where(specs.c.workspace == workspace, specs.c.name == name)).first()
        return _record(row._mapping) if row else None

    def list_records(self, workspace: str) -> list[SpecRecord]:
        """Every spec of a workspace, by name."""
        with database.read(self._engine) as db:
            rows = db.execute(sa.select(specs).where(specs.c.workspace == workspace).order_by(specs.c.name)).all()
        return [_record(r._mapping) for r in rows]

    def list_visible(self, workspace: str, channel: str) -> list[SpecRecord]:
        """The specs of a workspace that `channel` sees (the workspace's own and those private to it), by name."""
        seen = sa.or_(specs.c.channel == "", specs.c.channel == channel) if channel else specs.c.channel == ""
        with database.read(self._engine) as db:
            rows = db.execute(
                sa.select(specs).where(specs.c.workspace == workspace, seen).order_by(specs.c.name)
            ).all()
        return [_record(r._mapping) for r in rows]

    def set_visibility(self, workspace: str, name: str, channel: str) -> bool:
        """Make a spec private to `channel` ("" : the whole workspace); False if there is no such spec.

        A spec made private stops being the default of the other channels (they could no longer see it).
        """
        with database.write(self._engine) as db:
            changed = db.execute(
                sa.update(specs).where(specs.c.workspace == workspace, specs.c.name == name).values(channel=channel)
            ).rowcount
            if changed and channel:
                d = channel_defaults
                db.execute(sa.delete(d).where(d.c.workspace == workspace, d.c.spec == name, d.c.channel != channel))
        return bool(changed)

    # ---- channel defaults (`/api use NAME`) ----------------------------------------------------------

    def channel_default(self, workspace: str, channel: str) -> str | None:
        """The spec a channel searches first, if it chose one."""
        d = channel_defaults
        with database.read(self._engine) as db:
            found = db.execute(sa.select(d.c.spec).where(d.c.workspace == workspace, d.c.channel == channel)).scalar()
        return str(found) if found is not None else None

    def set_channel_default(self, workspace: str, channel: str, spec: str, user: str) -> None:
        """Make `spec` the channel's default (replacing any other)."""
        row = {"workspace": workspace, "channel": channel, "spec": spec, "set_by": user, "set_at": now()}
        with database.write(self._engine) as db:
            database.upsert(db, channel_defaults, [row])

    def clear_channel_default(self, workspace: str, channel: str) -> str | None:
        """Remove the channel's default; the spec it was, if any."""
        d = channel_defaults
        with database.write(self._engine) as db:
            gone = db.execute(
                sa.delete(d).where(d.c.workspace == workspace, d.c.channel == channel).returning(d.c.spec)
            ).scalar()
        return str(gone) if gone is not None else None

    def channel_defaults(self, workspace: str) -> dict[str, str]:
        """Every channel of a workspace with a default: channel -> spec."""
        d = channel_defaults
        with database.read(self._engine) as db:
            rows = db.execute(sa.select(d.c.channel, d.c.spec).where(d.c.workspace == workspace)).all()
        return {str(channel): str(spec) for channel, spec in rows}

    def workspaces(self) -> list[str]:
        """Every workspace with at least one spec."""
        with database.read(self._engine) as db:
            return list(db.execute(sa.select(specs.c.workspace).distinct().order_by(specs.c.workspace)).scalars())

    def put(self, record: SpecRecord, original: bytes | None = None, *, history: int | None = None) -> None:
        """Make `record` live, with its uploaded original: one transaction, the moment a new version goes live.

        The original is stored under `record.original_path` (see `original_name`); re-uploads of the same
        content in a workspace share one copy. Writing it here, with the record, means no other process can
        release it in between. New content becomes the spec's next version (`history`); a re-index of the same
        content does not. With `history`, at most that many earlier versions are kept: older ones go, with
        their originals unless something else still uses them.
        """
        with database.write(self._engine) as db:
            previous = db.execute(
                sa.select(specs.c.index_version, specs.c.original_path)
                .where(specs.c.workspace == record.workspace, specs.c.name == record.name)
                .with_for_update()
            ).all()
            if original is not None:
                database.upsert(
                    db,
                    originals,
                    [
                        {
                            "workspace": record.workspace,
                            "name": Path(record.original_path).name,
                            "data": original,
                            "size": len(original),
                            "touched_at": now(),
                        }
                    ],
                )
            database.upsert(db, specs, [_row(record)])
            _add_version(db, record, history)
            _retire(db, record.workspace, [(v, o) for v, o in previous if v != record.index_version])

    def read_original(self, workspace: str, original_path: str) -> bytes:
        """The bytes of a workspace's stored original (found by name within the workspace only)."""
        with database.read(self._engine) as db:
            data = db.execute(
                sa.select(originals.c.data).where(
                    originals.c.workspace == workspace, originals.c.name == Path(original_path).name
                )
            ).scalar()
        if data is None:
            raise OriginalMissingError(f"no stored original {Path(original_path).name!r} in this workspace")
        return bytes(data)

    def put_documents(self, workspace: str, index_version: str, documents: Sequence[Document]) -> None:
        """Store the documents of one spec version (not visible until `put` points a record at it)."""
        rows = [
            {"workspace": workspace, "index_version": index_version, "position": i, "payload": d.to_payload()}
            for i, d in enumerate(documents)
        ]
        with database.write(self._engine) as db:
            database.upsert(db, documents_table, rows)

    def documents(self, workspace: str, index_version: str) -> list[Document]:
        """The documents of one spec version, in the order they were stored."""
        table = documents_table
        with database.read(self._engine) as db:
            payloads = db.execute(
                sa.select(table.c.payload)
                .where(table.c.workspace == workspace, table.c.index_version == index_version)
                .order_by(table.c.position)
            ).scalars()
            return [Document.from_payload(p) for p in payloads]

    def delete_documents(self, workspace: str, index_version: str) -> None:
        """Remove the documents of one spec version."""
        table = documents_table
        with database.write(self._engine) as db:
            db.execute(sa.delete(table).where(table.c.workspace == workspace, table.c.index_version == index_version))

    def delete(self, workspace: str, name: str) -> int:
        """Forget a spec and its history (its version is retired: the sweep may remove whatever of it is left).

        The originals of its earlier versions go at once unless another spec uses them; returns how many went.
        """
        with database.write(self._engine) as db:
            gone = db.execute(
                sa.delete(specs)
                .where(specs.c.workspace == workspace, specs.c.name == name)
                .returning(specs.c.index_version, specs.c.original_path)
            ).all()
            h = spec_versions
            earlier = db.execute(
                sa.delete(h).where(h.c.workspace == workspace, h.c.name == name).returning(h.c.original_path)
            ).scalars()
            superseded = {Path(o).name for o in earlier} - {Path(o).name for _, o in gone}
            _retire(db, workspace, [(v, o) for v, o in gone])
            # A forgotten spec is no channel's default any more: those channels search every spec again.
            d = channel_defaults
            db.execute(sa.delete(d).where(d.c.workspace == workspace, d.c.spec == name))
            return _drop_unused_originals(db, workspace, sorted(superseded))

    def history(self, workspace: str, name: str) -> list[SpecVersion]:
        """Every kept version of a spec, oldest first (the last one is live); empty when it is not indexed."""
        h = spec_versions
        with database.read(self._engine) as db:
            rows = db.execute(
                sa.select(h).where(h.c.workspace == workspace, h.c.name == name).order_by(h.c.number)
            ).all()
        return [_version(r._mapping) for r in rows]

    def version_counts(self, workspace: str) -> dict[str, int]:
        """How many versions each spec of a workspace keeps, by name."""
        h = spec_versions
        with database.read(self._engine) as db:
            rows = db.execute(
                sa.select(h.c.name, sa.func.count()).where(h.c.workspace == workspace).group_by(h.c.name)
            ).all()
        return {str(name): int(count) for name, count in rows}

    def live_versions(self, workspace: str) -> set[str]:
        """Index versions the registry points at in a workspace."""
        with database.read(self._engine) as db:
            return set(db.execute(sa.select(specs.c.index_version).where(specs.c.workspace == workspace)).scalars())

    def totals(self) -> RegistryTotals:
        """How much is indexed across all workspaces (for metrics): live specs, their documents and operations."""
        live = documents_table.join(
            specs,
            sa.and_(
                documents_table.c.workspace == specs.c.workspace,
                documents_table.c.index_version == specs.c.index_version,
            ),
        )
        with database.read(self._engine) as db:
            workspaces, spec_count, operations = db.execute(
                sa.select(
                    sa.func.count(sa.distinct(specs.c.workspace)),
                    sa.func.count(),
                    sa.func.coalesce(sa.func.sum(specs.c.operation_count), 0),
                ).select_from(specs)
            ).one()
            document_count = db.execute(sa.select(sa.func.count()).select_from(live)).scalar_one()
        return RegistryTotals(int(workspaces), int(spec_count), int(document_count), int(operations))

    # ---- index versions being written (the ledger the start-up sweep reads) ---------------------------

    def begin_version(self, workspace: str, spec: str, index_version: str) -> None:
        """Note that this process starts writing an index version (before any of its documents or vectors)."""
        row = {
            "workspace": workspace,
            "index_version": index_version,
            "spec": spec,
            "owner": process_owner(),
            "created_at": now(),
        }
        with database.write(self._engine) as db:
            database.upsert(db, index_versions, [row])

    def end_version(self, workspace: str, index_version: str) -> None:
        """Drop the ledger entry of a version whose documents and vectors are gone."""
        table = index_versions
        with database.write(self._engine) as db:
            db.execute(sa.delete(table).where(table.c.workspace == workspace, table.c.index_version == index_version))

    def stale_versions(self, older_than: float) -> list[tuple[str, str]]:
        """(workspace, index_version) of versions no record points at that nobody is still writing.

        A version is abandoned when it was live once and has been replaced or forgotten (retired: its writer
        finished long ago, whoever and wherever it was), when its writer ran on this host and has exited (a
        crash, `kill -9`), or, for writers elsewhere (replicas sharing the data), when it was started more than
        `older_than` seconds ago.
        """
        v = index_versions
        live = sa.select(specs.c.index_version).where(
            specs.c.workspace == v.c.workspace, specs.c.index_version == v.c.index_version
        )
        with database.read(self._engine) as db:
            rows = db.execute(
                sa.select(v.c.workspace, v.c.index_version, v.c.owner, v.c.created_at).where(~live.exists())
            ).all()
        cutoff = now() - older_than
        return [
            (ws, version)
            for ws, version, owner, created in rows
            if owner == RETIRED or created < cutoff or _writer_gone(owner)
        ]

    def count_documents(self, workspace: str, index_version: str) -> int:
        """How many documents one spec version has stored."""
        table = documents_table
        with database.read(self._engine) as db:
            return int(
                db.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.workspace == workspace, table.c.index_version == index_version)
                ).scalar_one()
            )

    # ---- originals ---------------------------------------------------------------------------------

    def release_original(self, workspace: str, original_path: str) -> bool:
        """Delete a workspace's original unless one of its records still uses it; True if deleted.

        Originals are content-addressed per workspace, so two specs uploaded from the same file share one.
        The row is locked first (PostgreSQL; SQLite's write transaction locks everything), so a `put` that
        is writing a record for the same content either finishes first and is seen, or re-creates the row.
        """
        with database.write(self._engine) as db:
            return _drop_unused_originals(db, workspace, [Path(original_path).name]) == 1

    def sweep_originals(self, older_than: float) -> int:
        """Delete originals no record references that were last written more than `older_than` seconds ago.

        Young ones are kept: another process may be about to point a record at one.
        """
        o = originals
        with database.write(self._engine) as db:
            result = db.execute(
                sa.delete(o).where(o.c.touched_at < now() - older_than, ~_in_use(o.c.workspace, o.c.name))
            )
        return int(result.rowcount or 0)

    def original_hashes(self) -> set[str]:
        """The content hashes of every original any workspace holds (what parse results may be kept for)."""
        with database.read(self._engine) as db:
            names = db.execute(sa.select(originals.c.name).distinct()).scalars()
            return {Path(name).stem for name in names}

    def has_originals(self) -> bool:
        """Whether any workspace holds an original (data worth asking about before it is replaced)."""
        with database.read(self._engine) as db:
            return db.execute(sa.select(originals.c.name).limit(1)).first() is not None

    def original_names(self, workspace: str) -> list[str]:
        """The names of every original a workspace holds."""
        with database.read(self._engine) as db:
            return list(
                db.execute(
                    sa.select(originals.c.name).where(originals.c.workspace == workspace).order_by(originals.c.name)
                ).scalars()
            )

    # ---- purging a workspace -----------------------------------------------------------------------

    def delete_specs(self, workspace: str) -> int:
        """Remove every record of a workspace at once, with its channel defaults (its versions are retired)."""
        with database.write(self._engine) as db:
            db.execute(sa.delete(spec_versions).where(spec_versions.c.workspace == workspace))
            db.execute(sa.delete(channel_defaults).where(channel_defaults.c.workspace == workspace))
            gone = db.execute(
                sa.delete(specs)
                .where(specs.c.workspace == workspace)
                .returning(specs.c.index_version, specs.c.original_path)
            ).all()
            _retire(db, workspace, [(v, o) for v, o in gone])
        return len(gone)

    def versions_of(self, workspace: str) -> set[str]:
        """Every index version the registry knows of in a workspace: live, being written or abandoned."""
        with database.read(self._engine) as db:
            ledger = db.execute(
                sa.select(index_versions.c.index_version).where(index_versions.c.workspace == workspace)
            ).scalars()
            stored = db.execute(
                sa.select(documents_table.c.index_version).distinct().where(documents_table.c.workspace == workspace)
            ).scalars()
            return set(ledger) | set(stored)

    def delete_workspace_data(self, workspace: str) -> int:
        """Remove every stored document and ledger entry of a workspace (one transaction); returns documents."""
        with database.write(self._engine) as db:
            count = db.execute(sa.delete(documents_table).where(documents_table.c.workspace == workspace)).rowcount
            db.execute(sa.delete(index_versions).where(index_versions.c.workspace == workspace))
        return int(count or 0)

    def delete_originals(self, workspace: str) -> int:
        """Remove every original of a workspace; returns how many."""
        with database.write(self._engine) as db:
            return int(db.execute(sa.delete(originals).where(originals.c.workspace == workspace)).rowcount or 0)

    # ---- whole-registry copies (backups) -----------------------------------------------------------

    def export_to(self, target: Engine) -> None:
        """Copy every table into the empty, migrated database `target`, from one consistent snapshot."""
        with database.read(self._engine) as source, database.write(target) as sink:
            _copy_tables(source, sink)

    def replace_all(self, source: Engine) -> None:
        """Replace everything this registry holds with the contents of `source`, in one transaction."""
        with database.read(source) as reader, database.write(self._engine) as db:
            for table in database.TABLES:
                db.execute(sa.delete(table))
            _copy_tables(reader, db)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()


COPY_BATCH = 500


def _copy_tables(source: sa.Connection, sink: sa.Connection) -> None:
    """Insert every row of every registry table from `source` into `sink`, a batch at a time."""
    for table in database.TABLES:
        rows = source.execute(sa.select(table)).mappings()
        while batch := rows.fetchmany(COPY_BATCH):
            sink.execute(sa.insert(table), [dict(r) for r in batch])


def original_name(content_hash: str, filename: str) -> str:
    """How an original is stored: its content hash plus the upload's extension (`<sha256>.yaml`)."""
    return f"{content_hash}{Path(filename).suffix.lower()[:12]}"


def _in_use(workspace: Any, name: Any) -> sa.ColumnElement[bool]:
    """Whether a live spec or a kept version of one uses the original `name` of `workspace` (SQL columns)."""
    h = spec_versions
    live = sa.select(specs.c.name).where(specs.c.workspace == workspace, specs.c.original_path == name)
    kept = sa.select(h.c.name).where(h.c.workspace == workspace, h.c.original_path == name)
    return sa.or_(live.exists(), kept.exists())


def _drop_unused_originals(db: Connection, workspace: str, names: Sequence[str]) -> int:
    """Delete the originals `names` of a workspace that no live spec or kept version uses; how many went.

    Each row is locked first (PostgreSQL; SQLite's write transaction locks everything), so a `put` writing a
    record for the same content either finishes first and is seen, or re-creates the row.
    """
    o = originals
    dropped = 0
    for name in names:
        held = db.execute(
            sa.select(o.c.name).where(o.c.workspace == workspace, o.c.name == name).with_for_update()
        ).first()
        if held is None or db.execute(sa.select(_in_use(workspace, name))).scalar():
            continue
        db.execute(sa.delete(o).where(o.c.workspace == workspace, o.c.name == name))
        dropped += 1
    return dropped


def _add_version(db: Connection, record: SpecRecord, history: int | None) -> None:
    """Record `record`'s content as the spec's newest version (unless it already is), then prune to `history`."""
    h = spec_versions
    mine = sa.and_(h.c.workspace == record.workspace, h.c.name == record.name)
    newest = sa.select(h.c.number, h.c.content_hash).where(mine).order_by(h.c.number.desc()).limit(1)
    latest = db.execute(newest).first()
    row = {c.name: getattr(record, c.name) for c in h.columns if c.name != "number"}
    row |= {"format": record.format.value, "original_path": Path(record.original_path).name}
    if latest is not None and latest.content_hash == record.content_hash:
        # A re-index (or metadata update) of the live version: the same version, described as it now is.
        db.execute(sa.update(h).where(mine, h.c.number == latest.number).values(**row))
        return
    number = 1 if latest is None else int(latest.number) + 1
    db.execute(sa.insert(h).values(number=number, **row))
    if history is None:
        return
    pruned = db.execute(
        sa.delete(h).where(mine, h.c.number < number - history).returning(h.c.original_path)
    ).scalars()
    names = sorted({Path(o).name for o in pruned})
    if names:
        _drop_unused_originals(db, record.workspace, names)


def _version(row: Mapping[str, Any] | sa.RowMapping) -> SpecVersion:
    values = dict(row)
    values["format"] = SpecFormat(values["format"])
    return SpecVersion(**values)


def _row(record: SpecRecord) -> dict[str, Any]:
    row = {field.name: getattr(record, field.name) for field in fields(record)}
    row["format"] = record.format.value
    row["original_path"] = Path(record.original_path).name
    row["header"] = json.dumps(to_dict(record.header))
    row["destinations"] = json.dumps(list(record.destinations))
    return row


def _record(row: Mapping[str, Any] | sa.RowMapping) -> SpecRecord:
    values = dict(row)
    values["format"] = SpecFormat(values["format"])
    values["header"] = from_dict(ApiSpec, json.loads(values["header"]))
    values["destinations"] = tuple(json.loads(values["destinations"]))
    return SpecRecord(**values)


def now() -> float:
    """Wall-clock time for `indexed_at`."""
    return time.time()


_HOST = socket.gethostname()
_PROCESS_TOKEN = uuid.uuid4().hex


def process_owner() -> str:
    """Who is writing: `host|pid|token`; the token tells this process from an earlier one with the same pid."""
    return f"{_HOST}|{os.getpid()}|{_PROCESS_TOKEN}"


RETIRED = "retired"
"""The ledger's owner of a version that stopped being live: the process removing it may die half-way (and the
version's writer may be another replica, still running), so any sweep may finish the job at once."""


def _retire(db: Connection, workspace: str, gone: Sequence[tuple[str, str]]) -> None:
    """In the transaction that made them so: mark (index_version, original) pairs that are no longer live.

    The versions become nobody's (see `RETIRED`); originals no record uses any more are made old, so the
    sweep may take them at once too (a later `put` of the same content makes them young again, and a sweep
    never deletes one a record uses).
    """
    if not gone:
        return
    table = index_versions
    db.execute(
        sa.update(table)
        .where(table.c.workspace == workspace, table.c.index_version.in_([v for v, _ in gone]))
        .values(owner=RETIRED)
    )
    names = [Path(o).name for _, o in gone]
    o = originals
    db.execute(
        sa.update(o)
        .where(o.c.workspace == workspace, o.c.name.in_(names), ~_in_use(o.c.workspace, o.c.name))
        .values(touched_at=0.0)
    )


def _writer_gone(owner: str) -> bool:
    """Whether the process that wrote a ledger entry has certainly exited (only knowable on this host)."""
    host, _, rest = owner.partition("|")
    pid_text, _, token = rest.partition("|")
    if host != _HOST or not pid_text.isdigit():
        return False
    if token == _PROCESS_TOKEN:
        return False  # still being written by this very process
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # an earlier process that had our pid (a restarted container): it is gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False
