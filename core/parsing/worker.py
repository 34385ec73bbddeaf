"""Parse uploads in warm worker processes, each bounded in wall-clock time and memory.

Every pattern the parsers apply is linear, but a parser is a lot of code fed hostile files: this is the
defence for what nobody has found yet. A `ParsePool` keeps `PARSE_WORKERS` worker processes running (started
once, reused, so a normal upload pays no start-up) and sends each upload to an idle one:

- past `PARSE_TIMEOUT_SECONDS` the worker is killed and replaced, and the user gets `ParseTimeoutError`;
- each worker limits its own address space to `PARSE_MEMORY_MB` (`RLIMIT_AS`), so a file that needs more
  fails with `MemoryError` inside it; the worker is replaced and the user gets `ParseMemoryError`;
- any other exception inside the parser comes back as "couldn't read this spec" (`InvalidSpecError`), with
  the stack logged (frames only: an exception's message can quote the file, secrets included).

Waiting for a worker is plain asyncio I/O on its pipes, so the event loop never stalls, and at most
`PARSE_WORKERS` files are parsed at once, whatever arrives.

A file parsed once is not parsed again while its result is in the pool's cache: successful parses are kept by
the SHA-256 of the bytes and the file name (which decide the result with them), the least recently used
dropped first past `PARSE_CACHE_BYTES`. The same spec uploaded to another workspace or under another name, or
rebuilt by a re-index, then costs no parse (Stripe's 4 MB of YAML take 1.5-3 s). The upload's checks (type,
size) still run on every file. With a `ParsedDiskCache` (the bot keeps one under `DATA_DIR/parse-cache`) results
also outlive the process, so a re-index after a restart (`api-assistant reindex`, a restore, a model change)
parses nothing it parsed before.

Workers are fresh interpreters (`python -m core.parsing.worker`) started with asyncio's subprocess support,
never `fork()`ed from the bot (which holds model threads and sockets). `multiprocessing`'s spawn and forkserver
contexts were not used: their children re-run the parent's `__main__` (the `api-assistant` script imports the
whole bot, chromadb included) before doing anything, and their blocking pipes would need a thread per parse.

The protocol is length-prefixed pickles: the bot sends (filename, data, max_bytes, allowed extensions); the
worker answers ("ok", ApiSpec), ("rejected", error class name, message), ("memory",) or ("crashed", error class
name, stack frames). The bot unpickles answers with an allow-list of `core.models` classes, so even a
compromised worker could not make the bot run code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.metadata
import io
import os
import pickle
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import structlog

from core import messages
from core.errors import (
    FileTooLargeError,
    FileTypeNotAllowedError,
    InvalidSpecError,
    ParseMemoryError,
    ParseTimeoutError,
    UnreadableSpecError,
    UserFacingError,
)
from core.models import ApiSpec
from core.parsing.loader import DOCUMENT_READERS, check_upload

if TYPE_CHECKING:
    from core.config import Settings

log = structlog.get_logger(__name__)

DEFAULT_TARGET = "core.parsing.loader:load_spec"
WORKER_START_TIMEOUT_SECONDS = 60.0  # a fresh interpreter importing the parsers takes a fraction of a second
# Workers run at a lower CPU priority: on a small machine a long parse must not take the core the event loop
# (answering every workspace) needs.
WORKER_NICENESS = 5
_HEADER = struct.Struct(">Q")  # the length of the pickle that follows
_MIB = 1024 * 1024
# An answer is at most this many times the size of the upload (Stripe's is a third of it); more means a worker
# gone wrong, and reading it would only move the memory problem into the bot.
RESULT_BYTES_PER_INPUT_BYTE = 8
MIN_RESULT_BYTES = 64 * _MIB
# Kept free in each worker until a MemoryError, so it can still pickle and send its answer.
_EMERGENCY_RESERVE_BYTES = 4 * _MIB
# The classes an answer may contain; anything else is refused by the bot's unpickler.
_ALLOWED_CLASSES = frozenset(
    {
        "ApiSpec", "ItemKind", "Operation", "Parameter", "RequestBody", "Response", "SchemaField", "SecurityScheme",
        "SecurityRequirement", "SpecFormat", "ValueType",
    }
)  # fmt: skip
# The user-facing errors a parser raises on purpose, rebuilt by name in the bot.
# Estimated memory of the parse results kept (`ParsedCache`). A result takes about four times its pickle in
# memory (Stripe: 1.8 MB pickled, 7.7 MB of objects), so 64 MB holds eight Stripes or many smaller specs.
PARSE_CACHE_BYTES = 64 * _MIB
_OBJECT_BYTES_PER_PICKLED_BYTE = 4
_USER_ERRORS: dict[str, type[UserFacingError]] = {
    cls.__name__: cls for cls in (InvalidSpecError, UnreadableSpecError, FileTooLargeError, FileTypeNotAllowedError)
}


class SpecParser(Protocol):
    """The port for turning an upload into an `ApiSpec` (the assistant's `ParsePool`, or a test's own)."""

    async def parse(
        self, filename: str, data: bytes, *, max_bytes: int, allowed_extensions: frozenset[str]
    ) -> ApiSpec:
        """The parsed spec, or a `UserFacingError` saying why the file cannot be indexed."""
        ...

    async def retain(self, content_hashes: Collection[str]) -> int:
        """Drop every kept parse result of content not in `content_hashes`; how many were dropped."""
        ...

    async def aclose(self) -> None:
        """Release the parser's processes."""
        ...


class ParsedCache:
    """Parsed specs by (SHA-256 of the file, file name), bounded by their estimated memory; LRU out first.

    Results are immutable (frozen dataclasses of tuples), so one is safely handed to every caller.
    """

    def __init__(self, max_bytes: int = PARSE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[ApiSpec, int]] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(filename: str, data: bytes) -> tuple[str, str]:
        """The cache key of a file: its content's SHA-256 and its name (format detection and title read it)."""
        return hashlib.sha256(data).hexdigest(), filename

    def get(self, key: tuple[str, str]) -> ApiSpec | None:
        """The cached result, now the most recently used; None (a miss) when there is none."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: tuple[str, str], spec: ApiSpec, size: int) -> None:
        """Keep `spec` (estimated at `size` bytes), dropping the least recently used past the bound."""
        if size > self.max_bytes:
            return  # it would push out everything else and still not fit
        previous = self._entries.pop(key, None)
        if previous is not None:
            self._bytes -= previous[1]
        self._entries[key] = (spec, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped

    def retain(self, content_hashes: Collection[str]) -> int:
        """Drop the results of content not in `content_hashes`; how many were dropped."""
        gone = [key for key in self._entries if key[0] not in content_hashes]
        for key in gone:
            self._bytes -= self._entries.pop(key)[1]
        return len(gone)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The estimated bytes held."""
        return self._bytes


PARSE_DISK_CACHE_BYTES = 256 * _MIB
_PARSER_SOURCES = ("core/models.py", "core/paths.py", "core/parsing")
_READER_LIBRARIES = ("pypdf", "python-docx", "lxml")


def parser_fingerprint() -> str:
    """A digest of the parsers' and models' source: results cached on disk by other code are never used."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for name in _PARSER_SOURCES:
        path = root / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    # The document readers' results depend on their libraries too (read from metadata: nothing is imported).
    for library in _READER_LIBRARIES:
        try:
            digest.update(f"{library}=={importlib.metadata.version(library)}".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{library} missing".encode())
    return digest.hexdigest()[:16]


class ParsedDiskCache:
    """Parse results kept on disk by the same key as `ParsedCache`, under a directory per parser version.

    Each entry is the worker's answer exactly as it arrived, read back with the same allow-list unpickler, so a
    file planted in the directory can never make the bot run code; an unreadable entry is a miss (and removed).
    Past `max_bytes` the entries used least recently are deleted. Writes go through a temporary file and a rename,
    so a reader never sees half an entry, whatever else shares the directory.
    """

    def __init__(self, directory: Path, max_bytes: int = PARSE_DISK_CACHE_BYTES, version: str | None = None) -> None:
        self.max_bytes = max_bytes
        self.version = version or parser_fingerprint()
        self.directory = directory / self.version
        self.hits = 0
        self.misses = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        for other in directory.iterdir():  # results of other parser versions will never be read again
            if other.is_dir() and other.name != self.version:
                shutil.rmtree(other, ignore_errors=True)

    def _path(self, key: tuple[str, str]) -> Path:
        content_hash, filename = key
        return self.directory / f"{content_hash}-{hashlib.sha256(filename.encode()).hexdigest()[:16]}.pickle"

    def get(self, key: tuple[str, str]) -> tuple[ApiSpec, int] | None:
        """The cached spec and its pickled size, or None; blocking (call it in a thread)."""
        path = self._path(key)
        try:
            answer = path.read_bytes()
            os.utime(path)  # recently used: pruned last
        except OSError:
            self.misses += 1
            return None
        try:
            reply = _load_answer(answer)
        except Exception as exc:  # whatever a damaged or planted file raises, it is only a miss
            log.warning("parse_disk_cache_entry_refused", problem=type(exc).__name__)
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        if reply[0] != "ok" or len(reply) != 2 or not isinstance(reply[1], ApiSpec):
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return reply[1], len(answer)

    def put(self, key: tuple[str, str], answer: bytes) -> None:
        """Keep a worker's successful answer, then delete the least recently used entries past the bound."""
        if len(answer) > self.max_bytes:
            return
        path = self._path(key)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        try:
            partial.write_bytes(answer)
            partial.replace(path)
        except OSError as exc:  # a full or read-only disk costs the cache, never the upload
            partial.unlink(missing_ok=True)
            log.warning("parse_disk_cache_write_failed", error=type(exc).__name__)
            return
        self._prune()

    def retain(self, content_hashes: Collection[str]) -> int:
        """Delete the entries of content not in `content_hashes`; how many were deleted."""
        gone = 0
        for entry in self.directory.glob("*.pickle"):
            if entry.name.split("-", 1)[0] not in content_hashes:
                entry.unlink(missing_ok=True)
                gone += 1
        return gone

    def _prune(self) -> None:
        entries = []
        for entry in self.directory.glob("*.pickle"):
            with contextlib.suppress(OSError):
                status = entry.stat()
                entries.append((status.st_mtime, status.st_size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries, key=lambda item: item[0]):
            if total <= self.max_bytes:
                break
            entry.unlink(missing_ok=True)
            total -= size


class ParsePool(SpecParser):
    """Warm worker processes that parse uploads, one file each at a time, within time and memory limits."""

    def __init__(
        self,
        workers: int = 1,
        timeout_seconds: float = 60.0,
        memory_mb: int = 1500,
        *,
        target: str = DEFAULT_TARGET,
        cache_bytes: int = PARSE_CACHE_BYTES,
        disk_cache: ParsedDiskCache | None = None,
    ) -> None:
        """`target` names the parse function the workers call, `module:function` (tests name their own).

        Results of the default parser are cached (`ParsedCache`, at most `cache_bytes`; 0 turns it off, and the
        disk cache with it) and, given a `disk_cache`, on disk too; another target's are not, since the upload
        checks a cache hit repeats are the default parser's.
        """
        if workers < 1:
            raise ValueError("a parse pool needs at least one worker")
        self.workers = workers
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.target = target
        self.cache = ParsedCache(cache_bytes) if target == DEFAULT_TARGET and cache_bytes > 0 else None
        self.disk_cache = disk_cache if self.cache is not None else None
        # One slot per worker; None means "no live process here: start one before use".
        self._slots: asyncio.Queue[_Worker | None] = asyncio.Queue()
        for _ in range(workers):
            self._slots.put_nowait(None)
        self._running: set[_Worker] = set()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ParsePool:
        """A pool sized and bounded by `PARSE_WORKERS`, `PARSE_TIMEOUT_SECONDS` and `PARSE_MEMORY_MB`.

        Its results are also kept under `DATA_DIR/parse-cache`.
        """
        return cls(
            settings.parse_workers,
            settings.parse_timeout_seconds,
            settings.parse_memory_mb,
            disk_cache=ParsedDiskCache(settings.data_dir / "parse-cache"),
        )

    @property
    def pids(self) -> set[int]:
        """The process ids of the running workers (for operators, metrics and tests)."""
        return {worker.pid for worker in self._running if worker.alive}

    async def start(self) -> None:
        """Start every worker now rather than on the first upload (cheap: it does not wait for their imports)."""
        slots = [self._slots.get_nowait() for _ in range(self._slots.qsize())]
        try:
            for index, worker in enumerate(slots):
                if worker is None or not worker.alive:
                    slots[index] = await self._start_worker()
        finally:
            for worker in slots:
                self._slots.put_nowait(worker)

    async def parse(
        self, filename: str, data: bytes, *, max_bytes: int, allowed_extensions: frozenset[str]
    ) -> ApiSpec:
        """Parse an upload in a worker: the `ApiSpec`, or the user-facing error saying why not.

        Raises `ParseTimeoutError` / `ParseMemoryError` past the limits, `InvalidSpecError` when the parser
        failed unexpectedly, and whatever `UserFacingError` the parser raised for a bad file.
        """
        if self._closed:
            raise RuntimeError("the parse pool is closed")
        key = ParsedCache.key(filename, data) if self.cache is not None else None
        if key is not None and (cached := await self._cached(key)) is not None:
            # The same verdict as a parse: the checks `load_spec` makes first are the only ones that depend on
            # anything but the bytes and the name (the limits, which may have changed since).
            check_upload(filename, len(data), max_bytes=max_bytes, allowed_extensions=allowed_extensions)
            log.info("parse_cached", filename=filename, bytes=len(data))
            return cached
        request = pickle.dumps((filename, data, max_bytes, allowed_extensions), protocol=pickle.HIGHEST_PROTOCOL)
        reply_limit = max(MIN_RESULT_BYTES, RESULT_BYTES_PER_INPUT_BYTE * max_bytes)
        worker = await self._slots.get()
        replace: str | None = None  # why the worker must be replaced after this parse, if it must
        try:
            if worker is None or not worker.alive:
                worker = await self._start_worker()
            await worker.ready()  # a new worker's imports are not part of any file's time limit
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.timeout_seconds):
                    answer = await worker.exchange(request, reply_limit)
            except TimeoutError:
                replace = "timeout"
                log.warning(
                    "parse_timeout", filename=filename, bytes=len(data), timeout_seconds=self.timeout_seconds
                )
                raise ParseTimeoutError(messages.parse_timeout(filename, self.timeout_seconds)) from None
            except _ReplyTooLarge as exc:
                replace = "reply_too_large"
                log.warning("parse_memory_exceeded", filename=filename, bytes=len(data), reply_bytes=exc.size)
                raise ParseMemoryError(messages.parse_memory_exceeded(filename)) from None
            except (asyncio.IncompleteReadError, ConnectionError):
                returncode = await worker.wait_exit()
                replace = "died"
                if self._closed:
                    raise RuntimeError("the parse pool was closed during the parse") from None
                # SIGKILL that we did not send is the kernel's out-of-memory killer.
                if returncode == -signal.SIGKILL:
                    log.warning("parse_memory_exceeded", filename=filename, bytes=len(data), returncode=returncode)
                    raise ParseMemoryError(messages.parse_memory_exceeded(filename)) from None
                log.error("parse_worker_died", filename=filename, bytes=len(data), returncode=returncode)
                raise InvalidSpecError(messages.spec_unreadable(filename)) from None
            seconds = time.perf_counter() - started
            spec = await self._outcome(filename, data, answer, seconds, worker)
            if self.cache is not None and key is not None:
                self.cache.put(key, spec, len(answer) * _OBJECT_BYTES_PER_PICKLED_BYTE)
                if self.disk_cache is not None:
                    await asyncio.to_thread(self.disk_cache.put, key, answer)
            return spec
        except _WorkerSpent as exc:
            replace = exc.reason
            raise exc.error from None
        except UserFacingError:
            raise  # the verdict on this file; the worker is replaced only if `replace` says so
        except BaseException:
            if replace is None and worker is not None:  # cancelled mid-parse: its answer would arrive later
                replace = "interrupted"
            raise
        finally:
            await self._release(worker, replace)

    async def retain(self, content_hashes: Collection[str]) -> int:
        """Forget the results of files no longer stored anywhere (a spec forgotten, replaced or purged).

        Parse results hold the spec's text, so they go with the last stored copy of the file.
        """
        dropped = self.cache.retain(content_hashes) if self.cache is not None else 0
        if self.disk_cache is not None:
            dropped += await asyncio.to_thread(self.disk_cache.retain, frozenset(content_hashes))
        return dropped

    async def _cached(self, key: tuple[str, str]) -> ApiSpec | None:
        """The result kept in memory, else on disk (then kept in memory too), else None."""
        if self.cache is None:
            return None
        if (spec := self.cache.get(key)) is not None:
            return spec
        if self.disk_cache is None:
            return None
        found = await asyncio.to_thread(self.disk_cache.get, key)  # reading and unpickling a large spec: off the loop
        if found is None:
            return None
        spec, pickled_size = found
        self.cache.put(key, spec, pickled_size * _OBJECT_BYTES_PER_PICKLED_BYTE)
        return spec

    async def _outcome(self, filename: str, data: bytes, answer: bytes, seconds: float, worker: _Worker) -> ApiSpec:
        try:
            # Unpickling a large spec takes tens of milliseconds: off the event loop.
            reply = await asyncio.to_thread(_load_answer, answer)
        except pickle.UnpicklingError as exc:
            log.error("parse_answer_refused", filename=filename, problem=str(exc))
            raise _WorkerSpent("bad_answer", InvalidSpecError(messages.spec_unreadable(filename))) from None
        kind = reply[0]
        if kind == "ok" and isinstance(reply[1], ApiSpec):
            log.info("parse_done", filename=filename, bytes=len(data), seconds=round(seconds, 3), pid=worker.pid)
            return reply[1]
        if kind == "rejected":
            log.info("parse_rejected", filename=filename, bytes=len(data), error=str(reply[1]))
            error = _USER_ERRORS.get(str(reply[1]), InvalidSpecError)
            raise error(str(reply[2]))
        if kind == "memory":
            log.warning("parse_memory_exceeded", filename=filename, bytes=len(data), memory_mb=self.memory_mb)
            raise _WorkerSpent("memory", ParseMemoryError(messages.parse_memory_exceeded(filename)))
        if kind == "crashed":
            log.error("parse_crashed", filename=filename, bytes=len(data), error=str(reply[1]), frames=list(reply[2]))
            raise InvalidSpecError(messages.spec_unreadable(filename))
        log.error("parse_answer_refused", filename=filename, problem=f"unexpected answer {kind!r}")
        raise _WorkerSpent("bad_answer", InvalidSpecError(messages.spec_unreadable(filename)))

    async def _release(self, worker: _Worker | None, replace: str | None) -> None:
        """Put the worker back, or replace it: a fresh process, or an empty slot if none can be started."""
        if worker is None or replace is None:
            self._slots.put_nowait(worker)
            return
        await worker.kill()
        self._running.discard(worker)
        replacement: _Worker | None = None
        if not self._closed and replace != "interrupted":  # a cancelled caller should not wait for a start-up
            try:
                replacement = await self._start_worker()
            except OSError:
                log.error("parse_worker_start_failed", exc_info=True)
        log.info(
            "parse_worker_restarted",
            reason=replace,
            old_pid=worker.pid,
            new_pid=replacement.pid if replacement else None,
        )
        self._slots.put_nowait(replacement)

    async def _start_worker(self) -> _Worker:
        worker = await _Worker.start(self.memory_mb, self.target, self.timeout_seconds)
        self._running.add(worker)
        return worker

    async def aclose(self) -> None:
        """Stop every worker (idle or busy)."""
        self._closed = True
        for worker in list(self._running):
            await worker.kill()
        self._running.clear()


class _ReplyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"answer of {size} bytes")
        self.size = size


class _WorkerSpent(Exception):
    """The parse is over with `error` for the user, and the worker must be replaced (`reason`)."""

    def __init__(self, reason: str, error: UserFacingError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class _Worker:
    """One worker process and its pipes.

    The process is started with `subprocess.Popen` and its pipes then connected to asyncio streams, not with
    `asyncio.create_subprocess_exec`: on Python 3.11 that start, cancelled together with every other task (the
    loop shutting down while a worker starts or is replaced), waits forever for pipes that were never connected,
    so the process could not exit.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._process = process
        self._reader = reader
        self._writer = writer
        self.pid = process.pid
        self._ready = False

    @classmethod
    async def start(cls, memory_mb: int, target: str, timeout_seconds: float) -> _Worker:
        # The worker imports the same `core` as this process, wherever it is installed or checked out.
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        command = [sys.executable, "-m", "core.parsing.worker", str(memory_mb), target, str(timeout_seconds)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            reader, writer = await _streams(process)
        except BaseException:
            process.kill()
            process.wait()  # at once: it was just killed
            for pipe in (process.stdin, process.stdout):  # a pipe no transport took yet (closing twice is a no-op)
                if pipe is not None:
                    pipe.close()
            raise
        log.debug("parse_worker_started", pid=process.pid, memory_mb=memory_mb)
        return cls(process, reader, writer)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    async def ready(self) -> None:
        """Wait until the worker has imported the parsers and set its limits (it says so with an empty frame)."""
        if self._ready:
            return
        async with asyncio.timeout(WORKER_START_TIMEOUT_SECONDS):
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
        if size != 0:
            raise RuntimeError(f"parse worker {self.pid} did not start properly")
        self._ready = True

    async def exchange(self, request: bytes, reply_limit: int) -> bytes:
        """Send one request and read its answer (raises `IncompleteReadError` if the worker dies)."""
        self._writer.write(_HEADER.pack(len(request)) + request)
        await self._writer.drain()
        (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
        if size > reply_limit:
            raise _ReplyTooLarge(size)
        return await self._reader.readexactly(size)

    async def wait_exit(self) -> int | None:
        """The exit status once the process has ended (it has closed its pipe, so that is imminent)."""
        try:
            async with asyncio.timeout(5):
                return await self._exited()
        except TimeoutError:
            await self.kill()
            return self._process.returncode

    async def kill(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it may have just ended by itself
                self._process.kill()
        await self._exited()
        self._writer.close()

    async def _exited(self) -> int:
        # Polled: the process is known to be ending (killed, or its pipe closed), so this is a few milliseconds.
        while (code := self._process.poll()) is None:
            await asyncio.sleep(0.01)
        return code


async def _streams(process: subprocess.Popen[bytes]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over a process's stdout and stdin, read and written on the running loop."""
    assert process.stdin is not None and process.stdout is not None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), process.stdout)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, process.stdin)
    except BaseException:
        read_transport.close()
        raise
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


def _load_answer(answer: bytes) -> tuple[Any, ...]:
    reply = _AllowListUnpickler(io.BytesIO(answer)).load()
    if not isinstance(reply, tuple) or not reply:
        raise pickle.UnpicklingError("the answer is not a tuple")
    return reply


class _AllowListUnpickler(pickle.Unpickler):
    """Rebuilds only the model classes of `core.models`; any other class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "core.models" and name in _ALLOWED_CLASSES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a parse result")


# ---- the worker process -----------------------------------------------------------------------------------


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None  # the bot closed the pipe: time to go
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return body


def _frames(exc: BaseException) -> list[str]:
    """Where an exception was raised, as `file:line in function` lines; never its message or local values."""
    return [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in traceback.extract_tb(exc.__traceback__)]


def _handle(parse: Callable[..., ApiSpec], request: bytes) -> tuple[Any, ...]:
    filename, data, max_bytes, allowed_extensions = pickle.loads(request)
    try:
        return ("ok", parse(filename, data, max_bytes=max_bytes, allowed_extensions=allowed_extensions))
    except UserFacingError as exc:
        return ("rejected", type(exc).__name__, exc.user_message)
    except MemoryError:
        return ("memory",)
    except Exception as exc:
        return ("crashed", type(exc).__name__, _frames(exc))


def _limit_cpu(budget_seconds: float) -> None:
    """Let the coming parse use at most `budget_seconds` more CPU time; the kernel ends the process past it.

    A backstop should the bot die mid-parse: it kills a worker at the wall-clock limit itself.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used + budget_seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main(argv: list[str]) -> int:
    """Serve parse requests on stdin/stdout until stdin closes: `python -m core.parsing.worker MB TARGET TIMEOUT`."""
    memory_mb, target, timeout_seconds = int(argv[0]), argv[1], float(argv[2])
    # Ctrl-C in a terminal reaches the whole process group; the bot decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints go to stderr, not into the protocol
    module_name, _, function_name = target.partition(":")
    parse = getattr(importlib.import_module(module_name), function_name)
    for reader in DOCUMENT_READERS:  # pypdf, python-docx and lxml: imported once, outside any file's limits
        importlib.import_module(reader)
    os.nice(WORKER_NICENESS)
    if memory_mb > 0:
        limit = memory_mb * _MIB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # the hard limit too: no raising it back
    reserve: bytearray | None = bytearray(_EMERGENCY_RESERVE_BYTES)
    answers.write(_HEADER.pack(0))  # ready
    answers.flush()
    while (request := _read_frame(requests)) is not None:
        _limit_cpu(2 * timeout_seconds + 5)
        reply = _handle(parse, request)
        if reply[0] == "memory":
            reserve = None  # room to answer; the bot replaces this worker anyway
        try:
            payload = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            reserve = None
            payload = pickle.dumps(("memory",))
        answers.write(_HEADER.pack(len(payload)) + payload)
        answers.flush()
    del reserve
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
