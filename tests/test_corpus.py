"""The corpus resolver (tests/corpus.py): folder precedence, pinned downloads from a local HTTP server,
hash checks, and a failed download that is quick, tried once and skipped cleanly."""

from __future__ import annotations

import hashlib
import http.server
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.corpus import (
    HOW_TO_GET_IT,
    CorpusError,
    CorpusUnavailable,
    Pin,
    cache_dir,
    load_pins,
    resolve_specs,
    sha256_of,
)

FILES = {
    "small_openapi.yaml": ("owner/specs", "a" * 40, "openapi/spec.yaml", b"openapi: 3.0.0\n"),
    # A space in the upstream path (like the Twitter collection's): must be URL-quoted.
    "collection.json": ("owner/postman", "b" * 40, "My API.postman_collection.json", b'{"item": []}'),
    "versions/old.json": ("owner/specs", "c" * 40, "openapi/spec.json", b'{"openapi": "3.1.0"}'),
}


def _pins(files: dict[str, tuple[str, str, str, bytes]] = FILES) -> list[Pin]:
    return [
        Pin(name, repo, commit, path, hashlib.sha256(body).hexdigest(), len(body), 1)
        for name, (repo, commit, path, body) in files.items()
    ]


@dataclass
class FileServer:
    """A real HTTP server on 127.0.0.1 serving bodies by URL path, recording every request."""

    bodies: dict[str, bytes]
    requests: list[str] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    state = FileServer(
        {f"/{repo}/{commit}/{urllib.parse.quote(path)}": body for repo, commit, path, body in FILES.values()}
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            body = state.bodies.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables; the local server must be reached directly.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No SPECS_DIR, a SHARED_DIR without specs, and a cache of the test's own."""
    return {"SHARED_DIR": str(tmp_path / "no-shared"), "SPECS_CACHE_DIR": str(tmp_path / "cache"), **extra}


# --- local folders -----------------------------------------------------------------------------------


def test_specs_dir_wins_over_shared_and_download(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "shared" / "specs").mkdir(parents=True)
    env = {"SPECS_DIR": str(tmp_path / "mine"), "SHARED_DIR": str(tmp_path / "shared"), "SPECS_BASE_URL": "x"}
    assert resolve_specs(env, _pins()) == tmp_path / "mine"


def test_shared_specs_are_used_when_there_is_no_specs_dir(tmp_path: Path) -> None:
    (tmp_path / "shared" / "specs").mkdir(parents=True)
    env = {"SHARED_DIR": str(tmp_path / "shared"), "SPECS_BASE_URL": "x"}
    assert resolve_specs(env, _pins()) == tmp_path / "shared" / "specs"


def test_a_specs_dir_that_does_not_exist_is_an_error_not_a_skip(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"SPECS_DIR=.*is not a folder"):
        resolve_specs({"SPECS_DIR": str(tmp_path / "missing")}, _pins())


def test_cache_location_follows_the_environment(tmp_path: Path) -> None:
    assert cache_dir({"SPECS_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "api-assistant" / "specs"
    assert cache_dir({}) == Path.home() / ".cache" / "api-assistant" / "specs"


# --- downloads ---------------------------------------------------------------------------------------


def test_pinned_files_are_downloaded_verified_and_then_served_from_the_cache(
    tmp_path: Path, file_server: FileServer
) -> None:
    env = _env(tmp_path, SPECS_BASE_URL=file_server.url)
    found = resolve_specs(env, _pins())
    assert found == tmp_path / "cache"
    for name, (_, _, _, body) in FILES.items():
        assert (found / name).read_bytes() == body
    assert file_server.requests == [
        "/owner/specs/" + "a" * 40 + "/openapi/spec.yaml",
        "/owner/postman/" + "b" * 40 + "/My%20API.postman_collection.json",
        "/owner/specs/" + "c" * 40 + "/openapi/spec.json",
    ]
    stored = sorted(str(p.relative_to(found)) for p in found.rglob("*") if p.is_file())
    assert stored == ["collection.json", "small_openapi.yaml", "versions/old.json"]  # no .part files left

    # Next session: everything is in the cache, so no request at all (not even with downloads off).
    assert resolve_specs({**env, "SPECS_DOWNLOAD": "0"}, _pins()) == found
    assert len(file_server.requests) == 3


def test_only_missing_or_altered_cache_files_are_fetched_again(tmp_path: Path, file_server: FileServer) -> None:
    env = _env(tmp_path, SPECS_BASE_URL=file_server.url)
    found = resolve_specs(env, _pins())
    file_server.requests.clear()
    (found / "small_openapi.yaml").write_bytes(b"openapi: 3.0.0\n# edited\n")
    (found / "collection.json").unlink()
    resolve_specs(env, _pins())
    assert len(file_server.requests) == 2
    assert (found / "small_openapi.yaml").read_bytes() == b"openapi: 3.0.0\n"


def test_a_download_with_the_wrong_hash_is_refused_and_deleted(tmp_path: Path, file_server: FileServer) -> None:
    tampered = dict(FILES)
    repo, commit, path, body = FILES["collection.json"]
    tampered["collection.json"] = (repo, commit, path, b'{"item": [1]}')  # the pin the server won't match
    env = _env(tmp_path, SPECS_BASE_URL=file_server.url)
    with pytest.raises(CorpusError) as raised:
        resolve_specs(env, _pins(tampered))
    assert "does not match its pin" in str(raised.value)
    assert hashlib.sha256(body).hexdigest() in str(raised.value)
    cache = tmp_path / "cache"
    assert not (cache / "collection.json").exists()
    assert not [p for p in cache.rglob("*") if ".part" in p.name]
    assert (cache / "small_openapi.yaml").read_bytes() == FILES["small_openapi.yaml"][3]  # the good one is kept


def test_an_oversized_download_is_cut_off_and_refused(tmp_path: Path, file_server: FileServer) -> None:
    repo, commit, path, body = FILES["small_openapi.yaml"]
    file_server.bodies[f"/{repo}/{commit}/{path}"] = body + b"x" * 1_000_000
    with pytest.raises(CorpusError, match=f"{len(body) + 1} bytes"):
        resolve_specs(_env(tmp_path, SPECS_BASE_URL=file_server.url), _pins())
    assert not (tmp_path / "cache" / "small_openapi.yaml").exists()


def test_a_failed_download_stops_at_the_first_request(tmp_path: Path, file_server: FileServer) -> None:
    file_server.bodies.clear()  # every file 404s
    with pytest.raises(CorpusUnavailable) as raised:
        resolve_specs(_env(tmp_path, SPECS_BASE_URL=file_server.url), _pins())
    assert len(file_server.requests) == 1
    message = str(raised.value)
    assert "HTTP 404" in message and HOW_TO_GET_IT in message
    assert "\n" not in message


def test_no_server_is_unavailable_quickly(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    started = time.monotonic()
    with pytest.raises(CorpusUnavailable, match=re.escape("downloading small_openapi.yaml from 127.0.0.1:")):
        resolve_specs(_env(tmp_path, SPECS_BASE_URL=f"http://127.0.0.1:{port}"), _pins())
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_is_abandoned_at_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete in the backlog, but nothing ever replies
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(CorpusUnavailable):
            resolve_specs(_env(tmp_path, SPECS_BASE_URL=url), _pins(), timeout=0.5)
        assert time.monotonic() - started < 3  # one attempt, not one per file


def test_downloads_can_be_switched_off(tmp_path: Path, file_server: FileServer) -> None:
    with pytest.raises(CorpusUnavailable, match="SPECS_DOWNLOAD=0"):
        resolve_specs(_env(tmp_path, SPECS_BASE_URL=file_server.url, SPECS_DOWNLOAD="0"), _pins())
    assert file_server.requests == []


def test_only_http_base_urls(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="SPECS_BASE_URL"):
        resolve_specs(_env(tmp_path, SPECS_BASE_URL="file:///etc"), _pins())


# --- the committed pin table -------------------------------------------------------------------------


def test_pins_are_complete_and_well_formed() -> None:
    pins = load_pins()
    assert len({pin.file for pin in pins}) == len(pins) == 10
    for pin in pins:
        assert re.fullmatch(r"[0-9a-f]{64}", pin.sha256), pin.file
        assert re.fullmatch(r"[0-9a-f]{40}", pin.commit), pin.file
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", pin.repo), pin.file
        assert pin.size > 0 and pin.operations > 0
        assert pin.url("https://raw.githubusercontent.com").startswith(f"https://raw.githubusercontent.com/{pin.repo}/")
    assert sum(pin.size for pin in pins if "/" not in pin.file) == 10_938_568  # SOURCES.md's total


def _sources_table(text: str) -> dict[str, tuple[str, ...]]:
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) >= 7 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = tuple(cells)
    return rows


def test_pins_agree_with_sources_md(specs_dir: Path) -> None:
    """The committed pins are SOURCES.md's own figures (when ../shared is here to compare)."""
    sources = specs_dir / "SOURCES.md"
    if not sources.is_file():
        pytest.skip(f"no {sources} to compare the pins with")
    tables = {"": sources.read_text(encoding="utf-8")}
    if (specs_dir / "versions" / "SOURCES.md").is_file():
        tables["versions/"] = (specs_dir / "versions" / "SOURCES.md").read_text(encoding="utf-8")
    pins = {pin.file: pin for pin in load_pins()}
    checked = set()
    for prefix, text in tables.items():
        for name, cells in _sources_table(text).items():
            pin = pins[prefix + name]
            _, _, size, ops, repo, path, commit = cells[:7]
            assert int(size.replace(",", "")) == pin.size, name
            assert int(ops.split()[0]) == pin.operations, name
            assert (repo, path.strip("`")) == (pin.repo, pin.path), name
            assert pin.commit in commit, name
            assert f"{pin.sha256}  {name}" in text, name
            if (specs_dir / pin.file).is_file():
                assert sha256_of(specs_dir / pin.file) == pin.sha256, name
            checked.add(pin.file)
    assert checked == {f for f in pins if f[: f.rfind("/") + 1] in tables}
