"""Who may change specs, how many uploads a user and a workspace get, and the audit trail of every change."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from core.actions import BytesAttachment, ForgetSpec, ListSpecs, Origin, PathAttachment, UploadSpec
from core.errors import BusyError, InvalidSpecError, PermissionDeniedError, QuotaExceededError, RateLimitedError
from core.library import IngestProgress, replacement_changes
from core.models import ApiSpec, ItemKind, Operation, SecurityScheme, SpecFormat
from core.registry import SpecRegistry, destinations

ALICE = Origin("slack", "T1", user="U-ALICE", user_name="alice")
BOB = Origin("slack", "T1", user="U-BOB", user_name="bob")
ADMIN = Origin("slack", "T1", user="U-ADMIN", user_name="root", is_admin=True)


@dataclass
class CountingAttachment:
    """An attachment that records whether it was downloaded."""

    filename: str
    data: bytes
    reads: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.data)

    async def read(self, max_bytes: int) -> bytes:
        self.reads.append(max_bytes)
        return self.data


def audit_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "audit"]


def with_server(spec_text: str, server: str) -> bytes:
    return spec_text.replace("https://api.bookshop.example/v1", server).encode()


async def test_only_the_uploader_or_an_admin_may_replace_or_forget(assistant: Any, example_spec: Path) -> None:
    await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "shop"))
    changed = CountingAttachment("shop.yaml", with_server(example_spec.read_text(), "https://evil.example"))
    with pytest.raises(PermissionDeniedError) as refused:
        await assistant.ingest(UploadSpec(BOB, changed, "shop"))
    assert refused.value.user_message == (
        "Only alice (who uploaded `shop`) or a workspace admin can replace it. "
        "To add your file beside it, upload it under another name."
    )
    assert changed.reads == []  # refused before downloading anything
    with pytest.raises(PermissionDeniedError, match="can forget it"):
        await assistant.forget(ForgetSpec(BOB, "shop"))
    [record] = await assistant.list_specs(ListSpecs(ALICE))
    assert record.destinations == ("https://api.bookshop.example/v1",) and record.uploader_name == "alice"

    report = await assistant.ingest(UploadSpec(ADMIN, changed, "shop"))
    assert report.replaced and report.changes == (
        "⚠️ Requests now go to `https://evil.example` (was `https://api.bookshop.example/v1`).",
    )
    # The admin's upload makes the admin its uploader; alice no longer controls it, the admin does.
    with pytest.raises(PermissionDeniedError, match="Only root"):
        await assistant.forget(ForgetSpec(ALICE, "shop"))
    assert (await assistant.forget(ForgetSpec(ADMIN, "shop"))).name == "shop"


async def test_a_different_name_is_always_allowed(assistant: Any, example_spec: Path) -> None:
    await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "shop"))
    report = await assistant.ingest(UploadSpec(BOB, PathAttachment(example_spec), "shop-bob"))
    assert not report.replaced and report.record.uploaded_by == "U-BOB"


async def test_every_change_is_audited(assistant: Any, example_spec: Path) -> None:
    changed = BytesAttachment("shop.yaml", with_server(example_spec.read_text(), "https://v2.example"))
    with capture_logs() as logs:
        first = await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "shop"))
        await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "shop"))
        second = await assistant.ingest(UploadSpec(ALICE, changed, "shop"))
        with pytest.raises(PermissionDeniedError):
            await assistant.forget(ForgetSpec(BOB, "shop"))
        await assistant.forget(ForgetSpec(ALICE, "shop"))
    lines = audit_lines(logs)
    assert [(line["action"], line["outcome"]) for line in lines] == [
        ("upload", "ok"), ("upload", "unchanged"), ("replace", "ok"), ("forget", "refused"), ("forget", "ok"),
    ]
    assert lines[0]["version"] == first.record.index_version and lines[2]["version"] == second.record.index_version
    assert all(line["workspace"] == "slack:T1" and line["spec"] == "shop" for line in lines)
    assert [line["user"] for line in lines] == ["U-ALICE"] * 3 + ["U-BOB", "U-ALICE"]
    assert lines[3]["reason"] == "PermissionDeniedError"


async def test_refused_upload_is_audited(assistant: Any) -> None:
    with capture_logs() as logs, pytest.raises(InvalidSpecError):
        await assistant.ingest(UploadSpec(ALICE, BytesAttachment("notes.txt", b"just some notes"), None))
    [line] = audit_lines(logs)
    assert (line["action"], line["outcome"], line["spec"]) == ("upload", "refused", "notes")


async def test_workspace_quota(assistant: Any, example_spec: Path) -> None:
    assistant.settings.max_specs_per_workspace = 2
    for name in ("one", "two"):
        await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), name))
    blocked = CountingAttachment("three.yaml", example_spec.read_bytes())
    with pytest.raises(QuotaExceededError, match="already has 2 specs"):
        await assistant.ingest(UploadSpec(ALICE, blocked, "three"))
    assert blocked.reads == []
    # Replacing one of the two is not a new spec, and another workspace has its own quota.
    await assistant.ingest(UploadSpec(ALICE, BytesAttachment("two.yaml", with_server(example_spec.read_text(),
                                                                                     "https://x.example")), "two"))
    await assistant.ingest(UploadSpec(Origin("slack", "T2", user="U-C"), PathAttachment(example_spec), "three"))


async def test_upload_rate_limit_per_user(settings: Any, embedder: Any, example_spec: Path) -> None:
    from core.bootstrap import build_assistant

    limited = settings.model_copy(update={"upload_rate_limit_per_hour": 1, "upload_rate_limit_burst": 2})
    async with build_assistant(limited, embedder=embedder) as assistant:
        await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "a"))
        await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "b"))
        with pytest.raises(RateLimitedError, match="uploading specs faster") as refused:
            await assistant.ingest(UploadSpec(ALICE, PathAttachment(example_spec), "c"))
        assert refused.value.retry_after > 3000  # one upload an hour
        await assistant.ingest(UploadSpec(BOB, PathAttachment(example_spec), "c"))  # bob has his own bucket
        local = Origin("cli", "local", user="cli", is_admin=True)
        for name in "defg":  # the machine's operator (CLI, evaluation) imports in bulk
            await assistant.ingest(UploadSpec(local, PathAttachment(example_spec), name))


class SlowAttachment:
    """An attachment whose download waits until released, to hold an ingest slot."""

    def __init__(self, data: bytes) -> None:
        self.filename = "slow.yaml"
        self.data = data
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    @property
    def size(self) -> int:
        return len(self.data)

    async def read(self, max_bytes: int) -> bytes:
        self.started.set()
        await self.release.wait()
        return self.data


async def test_concurrent_ingests_are_capped(settings: Any, embedder: Any, example_spec: Path) -> None:
    from core.bootstrap import build_assistant

    capped = settings.model_copy(update={"ingest_max_concurrent": 1, "ingest_max_queue": 1})
    async with build_assistant(capped, embedder=embedder) as assistant:
        slow = SlowAttachment(example_spec.read_bytes())
        first = asyncio.create_task(assistant.ingest(UploadSpec(ALICE, slow, "first")))
        await slow.started.wait()
        seen: list[IngestProgress] = []
        second = asyncio.create_task(
            assistant.ingest(UploadSpec(BOB, PathAttachment(example_spec), "second"), seen.append)
        )
        while not seen:
            await asyncio.sleep(0.01)
        assert seen[0].stage == "queued" and "queued" in seen[0].message
        with pytest.raises(BusyError, match="indexing a lot of specs"):
            await assistant.ingest(UploadSpec(ADMIN, PathAttachment(example_spec), "third"))
        slow.release.set()
        await asyncio.gather(first, second)
        names = [r.name for r in await assistant.list_specs(ListSpecs(ALICE))]
        assert names == ["first", "second"]


def test_auth_and_destination_changes_are_described() -> None:
    def spec(servers: tuple[str, ...], schemes: tuple[SecurityScheme, ...], url: str = "") -> Any:
        operation = Operation(kind=ItemKind.POSTMAN, method="GET", path="/x", url=url)
        return ApiSpec(SpecFormat.POSTMAN, "t", servers=servers, operations=(operation,), security_schemes=schemes)

    bearer = SecurityScheme("bearer", "http", scheme="bearer")
    oauth = SecurityScheme("oauth", "oauth2", flows=("authorizationCode: https://auth.example/authorize",),
                           scopes=("read",))
    stolen = SecurityScheme("oauth", "oauth2", flows=("authorizationCode: https://phish.example/authorize",),
                            scopes=("read",))
    old = spec((), (bearer, oauth), url="https://api.example/2/tweets?x=1")
    new = spec((), (bearer, stolen), url="{{baseUrl}}/2/tweets")
    assert destinations(old) == ("https://api.example",) and destinations(new) == ("{{baseUrl}}",)

    @dataclass
    class Record:
        destinations: tuple[str, ...]
        header: ApiSpec

    changes = replacement_changes(Record(destinations(old), old), Record(destinations(new), new))  # type: ignore[arg-type]
    assert changes == (
        "⚠️ Requests now go to `{{baseUrl}}` (was `https://api.example`).",
        "⚠️ Auth changed: `oauth: oauth2 authorizationCode: https://auth.example/authorize scopes read` → "
        "`oauth: oauth2 authorizationCode: https://phish.example/authorize scopes read`.",
    )
    assert replacement_changes(Record(destinations(old), old), Record(destinations(old), old)) == ()  # type: ignore[arg-type]


def test_registry_from_before_the_uploader_columns_still_opens(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "registry.sqlite3")
    old.execute(
        """CREATE TABLE specs (
            workspace TEXT NOT NULL, name TEXT NOT NULL, format TEXT NOT NULL, title TEXT NOT NULL,
            version TEXT NOT NULL, content_hash TEXT NOT NULL, index_version TEXT NOT NULL,
            operation_count INTEGER NOT NULL, scheme_count INTEGER NOT NULL, uploaded_by TEXT NOT NULL,
            platform TEXT NOT NULL, indexed_at REAL NOT NULL, original_path TEXT NOT NULL,
            filename TEXT NOT NULL, header TEXT NOT NULL, PRIMARY KEY (workspace, name))"""
    )
    header = json.dumps({"format": "openapi3", "title": "Old"})
    old.execute("INSERT INTO specs VALUES ('slack:T1','old','openapi3','Old','1','h','v',1,0,'U1','slack',0,'p','f',?)",
                (header,))
    old.commit()
    old.close()
    registry = SpecRegistry(tmp_path)
    [record] = registry.list_records("slack:T1")
    assert (record.name, record.uploaded_by, record.uploader_name, record.destinations) == ("old", "U1", "", ())
    registry.close()
