"""Where the real-spec tests find the public spec corpus, which is never copied into this repository.

In order: `SPECS_DIR`; else `$SHARED_DIR/specs` (`SHARED_DIR` defaults to `../shared`); else the
files pinned in tests/corpus_pins.json (repository, commit, path, SHA-256; taken from
../shared/specs/SOURCES.md), downloaded once into a cache and checked against their hashes.
When none of these works the corpus is unavailable and the tests that need it are skipped.

- `SPECS_DOWNLOAD=0` never downloads (CI without network access, or by choice).
- `SPECS_CACHE_DIR` moves the cache (default `$XDG_CACHE_HOME/api-assistant/specs`,
  i.e. `~/.cache/api-assistant/specs`).
- `SPECS_BASE_URL` replaces https://raw.githubusercontent.com (the resolver's own tests use a local server).

A downloaded file whose hash differs from its pin is deleted and is an error, never used. Downloading
makes one attempt per session: the first failed request stops it, and a server that doesn't answer
within `DOWNLOAD_TIMEOUT_SECONDS` (DNS included) counts as failed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PINS_FILE = Path(__file__).with_name("corpus_pins.json")
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
DOWNLOAD_TIMEOUT_SECONDS = 4.0
CHUNK_BYTES = 1 << 16

HOW_TO_GET_IT = (
    "set SPECS_DIR to a folder with the files in tests/corpus_pins.json, "
    "or allow downloading them (network access to raw.githubusercontent.com, SPECS_DOWNLOAD not 0)"
)


@dataclass(frozen=True)
class Pin:
    """One corpus file: its name in the corpus folder and exactly where and what it is upstream."""

    file: str  # relative to the corpus folder, e.g. "versions/discord_....json"
    repo: str
    commit: str
    path: str
    sha256: str
    size: int
    operations: int  # the count SOURCES.md states (operations, requests, root fields or endpoints)

    def url(self, base_url: str) -> str:
        """Where the file is served for this commit."""
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{urllib.parse.quote(self.path)}"


class CorpusUnavailable(Exception):
    """No corpus folder and no way to download one: the real-spec tests are skipped."""


class CorpusError(Exception):
    """The corpus is misconfigured or a download does not match its pin: the real-spec tests fail."""


def load_pins(path: Path = PINS_FILE) -> tuple[Pin, ...]:
    """The pinned corpus files."""
    return tuple(Pin(**entry) for entry in json.loads(path.read_text(encoding="utf-8")))


def shared_dir(env: Mapping[str, str]) -> Path:
    """`SHARED_DIR`, else ../shared next to the repository."""
    configured = env.get("SHARED_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared"


def eval_dir(env: Mapping[str, str]) -> Path:
    """Where the evaluation questions live (they are not public, so they are never downloaded)."""
    return shared_dir(env) / "eval"


def cache_dir(env: Mapping[str, str]) -> Path:
    """Where downloaded corpus files are kept between sessions."""
    configured = env.get("SPECS_CACHE_DIR")
    if configured:
        return Path(configured)
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "api-assistant" / "specs"


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def resolve_specs(
    env: Mapping[str, str],
    pins: Sequence[Pin],
    *,
    timeout: float = DOWNLOAD_TIMEOUT_SECONDS,
) -> Path:
    """The corpus folder to test against, downloading pinned files into the cache if need be.

    Raises CorpusUnavailable (skip) or CorpusError (fail).
    """
    configured = env.get("SPECS_DIR")
    if configured:
        if not Path(configured).is_dir():
            raise CorpusError(f"SPECS_DIR={configured} is not a folder")
        return Path(configured)
    shared_specs = shared_dir(env) / "specs"
    if shared_specs.is_dir():
        return shared_specs
    return _cached_corpus(env, pins, timeout)


def specs_dir_or_exit(env: Mapping[str, str]) -> Path:
    """For scripts (benchmarks): the corpus folder, or exit with the reason and how to get it."""
    try:
        return resolve_specs(env, load_pins())
    except (CorpusUnavailable, CorpusError) as problem:
        raise SystemExit(f"spec corpus: {problem}") from problem


def _cached_corpus(env: Mapping[str, str], pins: Sequence[Pin], timeout: float) -> Path:
    cache = cache_dir(env)
    missing = [pin for pin in pins if not _cached_and_intact(cache, pin)]
    if not missing:
        return cache
    if env.get("SPECS_DOWNLOAD", "1").strip().lower() in ("0", "false", "no", "off"):
        raise CorpusUnavailable(f"no corpus folder, and SPECS_DOWNLOAD=0; {HOW_TO_GET_IT}")
    base_url = env.get("SPECS_BASE_URL") or DEFAULT_BASE_URL
    if not base_url.startswith(("https://", "http://")):
        raise CorpusError(f"SPECS_BASE_URL={base_url} is not an http(s) URL")
    for pin in missing:
        _download(pin, cache, base_url, timeout)
    return cache


def _cached_and_intact(cache: Path, pin: Pin) -> bool:
    """Whether the cache holds this file with the pinned hash; a file that doesn't match is removed."""
    target = cache / pin.file
    if not target.is_file():
        return False
    if target.stat().st_size == pin.size and sha256_of(target) == pin.sha256:
        return True
    target.unlink()  # changed since it was verified: fetch it again rather than use it
    return False


def _download(pin: Pin, cache: Path, base_url: str, timeout: float) -> None:
    """Fetch one pinned file into the cache, verified; anything else is deleted."""
    url = pin.url(base_url)
    target = cache / pin.file
    part = target.with_name(f"{target.name}.part-{os.getpid()}-{threading.get_ident()}")
    digest = hashlib.sha256()
    written = 0
    try:
        # Connect first: without a network, nothing (not even the cache folder) is left behind.
        with _open(url, timeout) as response:
            target.parent.mkdir(parents=True, exist_ok=True)
            with part.open("wb") as out:
                # One byte past the pinned size is enough to know it is wrong; never read an unbounded body.
                while chunk := response.read(min(CHUNK_BYTES, pin.size + 1 - written)):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError and timeouts are OSErrors
        part.unlink(missing_ok=True)
        host = urllib.parse.urlsplit(url).netloc
        raise CorpusUnavailable(f"downloading {pin.file} from {host} failed ({_reason(exc)}); {HOW_TO_GET_IT}") from exc
    if written != pin.size or digest.hexdigest() != pin.sha256:
        part.unlink(missing_ok=True)
        raise CorpusError(
            f"{url} does not match its pin in tests/corpus_pins.json "
            f"({written} bytes, sha256 {digest.hexdigest()}; expected {pin.size} bytes, sha256 {pin.sha256}); "
            "the download was deleted"
        )
    part.replace(target)


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    """urlopen with a deadline that covers name resolution too (socket timeouts don't)."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["response"] = urllib.request.urlopen(url, timeout=timeout)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    # A daemon thread: a resolver that never answers is abandoned, not waited for at exit.
    worker = threading.Thread(target=run, name="corpus-download", daemon=True)
    worker.start()
    worker.join(timeout)
    if "response" in outcome:
        response = outcome["response"]
        assert isinstance(response, http.client.HTTPResponse)
        return response
    if "error" in outcome:
        error = outcome["error"]
        assert isinstance(error, BaseException)
        raise error
    raise TimeoutError(f"no answer within {timeout:g} s")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
