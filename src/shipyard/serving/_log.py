"""The prediction log: every answered request on disk before its response leaves.

Layout, under ``<home>/predictions/<deployment>/``::

    wal/<writer>-<n>.open    the segment one live writer appends to (flock-ed by it)
    wal/<writer>-<n>.seg     a closed segment, waiting to be compacted
    index.json               compacted Parquet files (in the blob store) and the
                             segments they came from
    .compact.lock            held while compacting, or while a reader takes a snapshot

Records
-------
A segment is a sequence of frames: 4 bytes little-endian payload length, 4
bytes CRC-32 of the payload, then the payload, UTF-8 JSON (written by orjson:
NaN and infinity as null, as the compacted columns hold them). A reader stops at
the first frame that is short or fails its CRC: only a record that was never
acknowledged can be torn (a crash mid-write), so nothing acknowledged is lost
and nothing half-written is read. One record holds one request:

- prediction: ``{"k": "p", "t": ms, "v": model uri, "r": role, "ids": [...],
  "in": {column: [values]}, "out": [...], "proba": [[...]] | null, "ms": latency}``;
  ``r`` is ``primary``, ``canary`` or ``shadow`` (absent in records written before
  canaries existed: ``primary``). A shadow's record carries the ids of the request
  it shadowed, so labels posted for the answer join to the shadow's prediction too.
- labels: ``{"k": "l", "t": ms, "ids": [...], "labels": [...]}``

Durability: group commit
------------------------
Every write goes to a segment opened ``O_DSYNC``: ``os.write`` returns once
the data is on disk (like a write then ``fdatasync``, in one system call), and
only then are the records' waiters released, so a request is answered only
after its record is on disk. A write that fails fails every waiter of that
group (the server then answers 503, not a prediction).

Records are written in groups, so sixteen concurrent requests cost a few
syncs, not sixteen. The server tells the log how many requests it is
answering (:meth:`PredictionLog.expect`); a group waits for those that have
not appended yet, up to ``linger`` seconds (1 ms), and a lone client, whose
request is the only one in flight, never waits.

Who writes: small records appended on an event loop (:meth:`append_frames`)
are written by that loop itself, which blocks for one small synced write
(~0.2 ms per group). A writer thread did it before, and each of its wakes cost
it and the loop a GIL hand-over: with sixteen clients on 2 cores, the log
took 27-30 % of the throughput that way and 17 % this way. Large records (a
big batch) and appends from plain threads (:meth:`append_sync`: the shadow,
labels from the library) go to the writer thread, which owns rotation by age
and the close; a lock keeps the segment to one writer at a time.

Compaction
----------
Closed segments (rotated by size or age, or left ``.open`` by a writer that
died, which :func:`fcntl.flock` reveals) are turned into Parquet files, one per
UTC hour and kind, stored in the blob store and listed in ``index.json``
(written atomically) before the segments are deleted; a crash in between
leaves segments the index already lists, which readers skip and the next
compaction deletes. No database table is needed.

Columns of :func:`predictions`
------------------------------
``prediction_id`` (string: 12 hex digits of the time in ms then 20 random hex
digits, so ids sort by time), ``time`` (timestamp[ms, UTC]), ``deployment``,
``model_version`` (``models:/name/N``), ``role`` (``primary``, ``canary`` or
``shadow``: which part of the deployment made the prediction; a shadow's rows
repeat the ids of the rows it shadowed and are left out unless asked for), one
``inputs.<column>`` column per model input, ``prediction``, ``probabilities`` (list<double>, null when the
model has none), ``latency_ms``, and, joined by id, ``label`` and
``label_time`` (null until a label arrives; the last label for an id wins).
Inputs are flattened columns rather than JSON text because monitoring reads
them as columns (a drift test per feature) and Parquet compresses and filters
them as such; columns of different model versions are unioned (nulls where a
version lacks one).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from shipyard import _files
from shipyard.errors import InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.blobs import BlobStore
    from shipyard.tracking import Client

__all__ = ["PredictionLog", "log_labels", "new_ids", "predictions", "stored_labels"]

_HEADER = struct.Struct("<II")
_OPEN, _CLOSED = ".open", ".seg"
INDEX_FILE = "index.json"
LOCK_FILE = ".compact.lock"
#: The longest a sync waits for requests still being answered (see "Durability").
LINGER_SECONDS = 0.001
#: Records up to this size appended on an event loop are written by that loop itself.
LOOP_WRITE_BYTES = 256 * 1024
#: A segment is closed (and may be compacted) past this size or age.
SEGMENT_BYTES = 32 * 1024 * 1024
SEGMENT_SECONDS = 300.0
_HOUR_MS = 3_600_000
#: What part of a deployment made a prediction (the ``role`` column).
PRIMARY, CANARY, SHADOW = "primary", "canary", "shadow"
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def new_ids(count: int, now_ms: int | None = None) -> list[str]:
    """``count`` unique prediction ids: 12 hex digits of the time in ms, 20 random hex digits."""
    prefix = f"{(now_ms if now_ms is not None else time.time_ns() // 1_000_000):012x}"
    randoms = secrets.token_hex(10 * count)
    return [prefix + randoms[i : i + 20] for i in range(0, 20 * count, 20)]


def log_folder(home: Path, deployment: str) -> Path:
    from shipyard.models import _uri

    try:
        _uri.check_name(deployment)
    except InvalidInput:
        raise InvalidInput(
            f"A deployment name is 1 to 128 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; got {deployment!r}.",
            hint="Use a name such as 'credit' (the model's name is the default).",
        ) from None
    return Path(home) / "predictions" / deployment


def json_default(value: Any) -> Any:
    """What JSON holds for a value neither JSON writer takes as it is."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if hasattr(value, "tolist"):  # numpy arrays orjson does not take, and numpy scalars
        return value.tolist()
    return str(value)


def encode(record: Mapping[str, Any]) -> bytes:
    """One frame: length, CRC-32 and the record as compact JSON (NaN and infinity as null,
    which is how the compacted columns hold them)."""
    try:
        payload = orjson.dumps(record, default=json_default, option=_ORJSON_OPTIONS)
    except TypeError:  # an integer beyond 64 bits, a key that is not a string
        payload = json.dumps(record, separators=(",", ":"), default=json_default).encode()
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode(data: bytes) -> Iterator[dict[str, Any]]:
    """The records of a segment's bytes, up to the first torn or corrupt frame."""
    view = memoryview(data)
    offset, end = 0, len(data)
    while offset + _HEADER.size <= end:
        length, crc = _HEADER.unpack_from(view, offset)
        start = offset + _HEADER.size
        payload = view[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        yield _loads(payload)
        offset = start + length


def _loads(payload: memoryview) -> dict[str, Any]:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:  # NaN or infinity, which older servers wrote
        return json.loads(bytes(payload))


# ------------------------------------------------------------------ writing


class _Group:
    """Waiters released together by one sync: asyncio futures (grouped by loop) and events."""

    __slots__ = ("chunks", "events", "futures", "rotate", "since")

    def __init__(self) -> None:
        self.rotate = False
        #: When the first record came (time.monotonic()).
        self.since = 0.0
        self.chunks: list[bytes] = []
        self.futures: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        self.events: list[_Event] = []


class _Held:
    """Records an event loop holds for its next write: frames and their waiters."""

    __slots__ = ("armed", "frames", "futures")

    def __init__(self) -> None:
        self.armed = False
        self.frames: list[bytes] = []
        self.futures: list[asyncio.Future[None]] = []


class _Event(threading.Event):
    error: BaseException | None = None


def _release(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if not future.done():
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


class Ticket:
    """A request the log expects (:meth:`PredictionLog.expect`)."""

    __slots__ = ("log", "used")

    def __init__(self, log: PredictionLog) -> None:
        self.log = log
        self.used = False

    def cancel(self) -> None:
        """The request will not append (refused, failed); nothing once it has appended."""
        log = self.log
        if self.used:
            return
        with log._cond:
            log._arrived(self)
            if log._answering > 0:
                return
            log._cond.notify()
        log._write_held_soon()


class PredictionLog:
    """The append-only log of one deployment in one process (see the module docstring).

    ``sync=False`` opens segments without ``O_DSYNC`` (tests and benchmarks of the cost
    only). ``linger`` is how long a group may wait for requests still being answered.
    """

    def __init__(
        self,
        folder: Path,
        *,
        sync: bool = True,
        segment_bytes: int = SEGMENT_BYTES,
        segment_seconds: float = SEGMENT_SECONDS,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.folder = Path(folder)
        self.linger = linger
        #: Requests being answered that have not appended yet (:meth:`expect`).
        self._answering = 0
        #: Whether the writer waits with nothing queued (then any record wakes it).
        self._idle = False
        #: The open segment is written by one at a time: the thread, or an event loop.
        self._io = threading.Lock()
        self._held: dict[asyncio.AbstractEventLoop, _Held] = {}
        self.wal = self.folder / "wal"
        self.sync = sync
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.writer_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._number = 0
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        self._group = _Group()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        #: Records acknowledged, and records waiting for their sync (for /metrics).
        self.written = 0
        self.pending = 0
        self.syncs = 0

    # The thread and the first segment start on first use, so a log only read makes no file.
    def _start(self) -> None:
        if self._thread is None:
            _files.make_dirs(self.wal)
            self._thread = threading.Thread(
                target=self._run, name=f"shipyard-log-{self.folder.name}", daemon=True
            )
            self._thread.start()

    async def append(self, record: Mapping[str, Any]) -> None:
        """Queue ``record`` and return once it is on disk (raises if the write failed)."""
        await self.append_frames([encode(record)])

    async def append_frames(self, frames: list[bytes], *, ticket: Ticket | None = None) -> None:
        """:meth:`append` for records already encoded (:func:`encode`), by the request that
        took ``ticket`` (:meth:`expect`), if any."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if sum(map(len, frames)) > LOOP_WRITE_BYTES:  # a large batch: the thread writes it
            self._enqueue(frames, futures=(loop, future), ticket=ticket)
        else:
            self._hold(loop, frames, future, ticket)
        await future

    def _hold(
        self,
        loop: asyncio.AbstractEventLoop,
        frames: list[bytes],
        future: asyncio.Future[None],
        ticket: Ticket | None,
    ) -> None:
        """Keep small records for this loop's next write: now when no other request is being
        answered, else once the last one appended or ``linger`` seconds passed."""
        with self._cond:
            self._arrived(ticket)
            self._check_open()
            self._start()
            self.pending += len(frames)
            answering = self._answering
        held = self._held.get(loop)
        if held is None:
            held = self._held[loop] = _Held()
        held.frames.extend(frames)
        held.futures.append(future)
        if answering <= 0 or self.linger <= 0:
            loop.call_soon(self._write_held, loop)
        elif not held.armed:
            held.armed = True
            loop.call_later(self.linger, self._write_held, loop)

    def _write_held_soon(self) -> None:
        """From a loop whose requests have all appended: write what it holds."""
        with contextlib.suppress(RuntimeError):  # no running loop: a plain thread
            loop = asyncio.get_running_loop()
            held = self._held.get(loop)
            if held is not None and held.frames:
                loop.call_soon(self._write_held, loop)

    def _write_held(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: write and sync what it holds, then release the waiters. The loop
        blocks for one small synced write (~0.2 ms); a thread would cost more here, in GIL
        hand-overs with the loop, than the wait does."""
        held = self._held.get(loop)
        if held is None or not held.frames:
            return
        self._held[loop] = _Held()
        _release(held.futures, self._write_now(held.frames))

    def _write_now(self, frames: list[bytes], *, rotate: bool = False) -> StoreUnavailable | None:
        """Write (and sync) ``frames`` and count them; the error to give their waiters, if any."""
        error = None
        try:
            with self._io:
                self._write(b"".join(frames))
                if rotate or self._closing:
                    self._close_segment()
        except OSError as exc:
            error = StoreUnavailable(
                f"Cannot write the prediction log in {self.wal}: {exc}.",
                hint="Free disk space or fix the folder's permissions; predictions are "
                "refused until the log can be written.",
            )
        with self._cond:
            self.pending -= len(frames)
            if error is None:
                self.written += len(frames)
        return error

    def _check_open(self) -> None:
        if self._closing:
            raise StoreUnavailable(
                "The prediction log is closed; the server is stopping.",
                hint="Retry on another replica.",
            )

    def expect(self) -> Ticket:
        """A request is being answered and will append with the ticket, or
        :meth:`Ticket.cancel` it: a sync may wait a moment for it rather than run without it."""
        with self._cond:
            self._answering += 1
        return Ticket(self)

    def _arrived(self, ticket: Ticket | None) -> None:
        """(the lock held) One expected request appended or gave up."""
        if ticket is not None and not ticket.used:
            ticket.used = True
            self._answering -= 1

    def append_sync(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Append ``records`` from a plain thread; return once they are on disk."""
        self._wait(_Event(), [encode(record) for record in records])

    def rotate(self) -> None:
        """Close the current segment once what is queued is written (ready for compaction)."""
        self._wait(_Event(), [], rotate=True)

    def _wait(self, event: _Event, frames: list[bytes], *, rotate: bool = False) -> None:
        self._enqueue(frames, event=event, rotate=rotate)
        event.wait()
        if event.error is not None:
            raise event.error

    def _enqueue(
        self,
        frames: list[bytes],
        *,
        futures: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None,
        event: _Event | None = None,
        rotate: bool = False,
        ticket: Ticket | None = None,
    ) -> None:
        with self._cond:
            self._arrived(ticket)
            self._check_open()
            self._start()
            group = self._group
            if not group.since:
                group.since = time.monotonic()
            group.chunks.extend(frames)
            self.pending += len(frames)
            if futures is not None:
                group.futures.setdefault(futures[0], []).append(futures[1])
            if event is not None:
                group.events.append(event)
            group.rotate = group.rotate or rotate
            # Wake the writer when it idles, or when the group it lingers over is complete;
            # not on every record (each wake costs it the GIL, and the loop a switch).
            if self._idle or self._answering <= 0 or event is not None or rotate:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while (wait := self._until_ready()) is not None:
                    self._idle = not self._group.since
                    self._cond.wait(timeout=wait)
                    self._idle = False
                    if self._fd is not None and not self._group.since and self._due():
                        self._safe_close()
                if not self._group.since:  # closing, nothing queued
                    self._safe_close()
                    return
                group, self._group = self._group, _Group()
            error = self._write_now(group.chunks, rotate=group.rotate)
            for loop, futures in group.futures.items():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(_release, futures, error)
            for event in group.events:
                event.error = error
                event.set()

    def _until_ready(self) -> float | None:
        """(the lock held) None when the queued group is to be written now, else how long
        to wait at most: the group waits up to ``linger`` seconds from its first record while
        requests being answered may still append, unless a plain thread, a rotation or the
        close waits for it."""
        group = self._group
        if not group.since:
            return None if self._closing else 1.0
        if self._answering <= 0 or group.events or group.rotate or self._closing:
            return None
        left = group.since + self.linger - time.monotonic()
        return left if left > 0 else None

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._fd is None or self._due():
            self._rotate()
        assert self._fd is not None
        view = memoryview(data)
        while view:  # with O_DSYNC, a write returns once its data is on disk
            written = os.write(self._fd, view)
            view = view[written:]
        self.syncs += 1
        self._size += len(data)

    def _due(self) -> bool:
        return self._size >= self.segment_bytes or (
            self._size > 0 and time.monotonic() - self._opened_at >= self.segment_seconds
        )

    def _safe_close(self) -> None:
        with contextlib.suppress(OSError), self._io:
            self._close_segment()

    def _rotate(self) -> None:
        self._close_segment()
        self._number += 1
        path = self.wal / f"{self.writer_id}-{self._number:06d}{_OPEN}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        # O_DSYNC: one system call writes and syncs (as write then fdatasync would).
        fd = os.open(path, flags | (os.O_DSYNC if self.sync else 0), 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held while this writer lives
        _files.fsync_dir(self.wal)
        self._fd, self._path, self._size = fd, path, 0
        self._opened_at = time.monotonic()

    def _close_segment(self) -> None:
        """Close the open segment and rename it ``.seg``: ready for compaction."""
        if self._fd is None or self._path is None:
            return
        fd, path = self._fd, self._path
        self._fd = self._path = None
        try:
            if self.sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self._size:
            os.replace(path, path.with_suffix(_CLOSED))
        else:
            path.unlink(missing_ok=True)
        _files.fsync_dir(self.wal)

    def close(self) -> None:
        """Write what is queued, close the segment, stop the thread. Idempotent."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        else:
            with self._cond, self._io:
                self._close_segment()

    @property
    def backlog_bytes(self) -> int:
        """Bytes in segments not yet compacted (this folder, every writer)."""
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.wal):
                if entry.name.endswith((_OPEN, _CLOSED)):
                    with contextlib.suppress(FileNotFoundError):
                        total += entry.stat().st_size
        return total


# ------------------------------------------------------------------ the index


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    files: list[dict[str, Any]]
    records: list[dict[str, Any]]


def _read_index(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / INDEX_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"format": 1, "files": [], "compacted": []}
    except (OSError, ValueError) as exc:
        raise StoreUnavailable(
            f"Cannot read the prediction log index {folder / INDEX_FILE}: {exc}."
        ) from exc
    return data


def _lock(folder: Path) -> Any:
    from filelock import FileLock

    _files.make_dirs(folder)
    return FileLock(str(folder / LOCK_FILE))


def _segments(wal: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(wal))
    except FileNotFoundError:
        return []
    return [wal / name for name in names if name.endswith((_OPEN, _CLOSED))]


def _is_abandoned(path: Path) -> bool:
    """Whether an ``.open`` segment's writer is gone (nobody holds its lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock we took
    return True


def _snapshot(folder: Path) -> _Snapshot:
    """Compacted files and uncompacted records, consistent with each other."""
    with _lock(folder):
        index = _read_index(folder)
        done = set(index.get("compacted", ()))
        chunks = []
        for path in _segments(folder / "wal"):
            if path.name in done:
                continue
            with contextlib.suppress(FileNotFoundError):
                chunks.append(path.read_bytes())
    records = [record for chunk in chunks for record in decode(chunk)]
    return _Snapshot(list(index.get("files", ())), records)


def compact(folder: Path, blobs: BlobStore, deployment: str) -> int:
    """Turn closed segments into hourly Parquet files in ``blobs``; return segments compacted."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    wal = folder / "wal"
    with _lock(folder):
        index = _read_index(folder)
        done = set(index.get("compacted", ()))
        present = _segments(wal)
        # Segments the index lists whose deletion a crash interrupted.
        for path in present:
            if path.name in done:
                path.unlink(missing_ok=True)
        ready = [path for path in present if path.name not in done and _waits_for_compaction(path)]
        if not ready:
            return 0
        predictions, labels = _tables_of(ready, deployment)
        files = list(index.get("files", ()))
        for kind, table in (("predictions", predictions), ("labels", labels)):
            if table is None or table.num_rows == 0:
                continue
            hours = _hours(table)
            for hour in sorted(set(hours)):
                part = table.filter(_equal(hours, hour))
                sink = _parquet_bytes(part, pq)
                info = blobs.put(sink)
                times = part.column("time" if kind == "predictions" else "label_time")
                files.append(
                    {
                        "kind": kind,
                        "hour": dt.datetime.fromtimestamp(hour * 3600, dt.UTC).strftime(
                            "%Y-%m-%dT%H"
                        ),
                        "digest": info.digest,
                        "rows": part.num_rows,
                        "start_ms": _ms(min(times.to_pylist())),
                        "end_ms": _ms(max(times.to_pylist())),
                    }
                )
        on_disk = {path.name for path in present}
        new_index = {
            "format": 1,
            "files": files,
            "compacted": sorted((done & on_disk) | {path.name for path in ready}),
        }
        _files.atomic_write(folder / INDEX_FILE, json.dumps(new_index, indent=1).encode())
        for path in ready:
            path.unlink(missing_ok=True)
        _files.fsync_dir(wal)
    del predictions, labels
    _release_memory()
    return len(ready)


def compact_in_child(folder: Path, client: Client, deployment: str) -> int:
    """:func:`compact` in a short-lived child process, for a long-running server: decoding
    a segment takes a few hundred MiB for a few seconds, which a child hands back to the
    OS when it exits, where the server's own heap would keep it. Nothing is started when
    no segment is ready."""
    import subprocess
    import sys

    if not _pending(Path(folder)):
        return 0
    command = [sys.executable, "-m", "shipyard.serving._compact", str(folder), deployment]
    done = subprocess.run(
        command,
        input=json.dumps(
            {
                "artifacts": str(client.settings.artifacts),
                "s3_endpoint_url": client.settings.s3_endpoint_url,
            }
        ),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise StoreUnavailable(f"Compacting the prediction log {folder} failed: {reason}")
    return int(done.stdout.strip() or 0)


def _pending(folder: Path) -> bool:
    """Whether any segment of the log at ``folder`` waits for compaction."""
    return any(_waits_for_compaction(path) for path in _segments(folder / "wal"))


def _waits_for_compaction(path: Path) -> bool:
    """A closed segment, or one left open by a writer that died."""
    return path.suffix == _CLOSED or (path.suffix == _OPEN and _is_abandoned(path))


def _tables_of(paths: Sequence[Path], deployment: str) -> tuple[pa.Table | None, pa.Table | None]:
    """The prediction and label tables of the segments at ``paths``, one record decoded at a
    time into column lists: memory holds one segment's bytes and the columns' values, not
    every record as a dict (which took ~450 MiB for one 32 MiB segment)."""

    def records() -> Iterator[dict[str, Any]]:
        for path in paths:
            yield from decode(path.read_bytes())

    predictions, labels = _PredictionColumns(), _LabelColumns()
    for record in records():
        if record.get("k") == "p":
            predictions.add(record)
        elif record.get("k") == "l":
            labels.add(record)
    return predictions.table(deployment), labels.table()


def _release_memory() -> None:
    """Hand freed memory back to the OS after a compaction: Arrow's pool keeps freed
    pages, and glibc keeps freed heap below its top, so a long-running server's
    resident size would otherwise stay at its compaction peak."""
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _parquet_bytes(table: pa.Table, pq: Any) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, dt.datetime) else int(value)


def _hours(table: pa.Table) -> list[int]:
    name = "time" if "time" in table.column_names else "label_time"
    import pyarrow.compute as pc

    ms = pc.cast(table.column(name), "int64").to_numpy()
    return (ms // _HOUR_MS).tolist()


def _equal(hours: list[int], hour: int) -> pa.Array:
    import pyarrow as pa

    return pa.array([h == hour for h in hours])


# ------------------------------------------------------------------ tables


def _column(values: list[Any]) -> pa.Array:
    """An Arrow column for JSON values: its natural type, else each value as JSON text."""
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


class _PredictionColumns:
    """Prediction records, added one at a time, as the columns of :func:`predictions`."""

    def __init__(self) -> None:
        self.count = 0
        self.ids: list[str] = []
        self.times: list[int] = []
        self.versions: list[str] = []
        self.roles: list[str] = []
        self.outputs: list[Any] = []
        self.probas: list[Any] = []
        self.latencies: list[float] = []
        self.inputs: dict[str, list[Any]] = {}

    def add(self, record: Mapping[str, Any]) -> None:
        n = len(record["ids"])
        self.ids.extend(record["ids"])
        self.times.extend([record["t"]] * n)
        self.versions.extend([record["v"]] * n)
        self.roles.extend([record.get("r", PRIMARY)] * n)
        self.outputs.extend(record["out"])
        self.probas.extend(record["proba"] if record.get("proba") is not None else [None] * n)
        self.latencies.extend([record["ms"]] * n)
        for name, values in record["in"].items():
            column = self.inputs.get(name)
            if column is None:  # a column new in this record: null in the rows before it
                column = self.inputs[name] = [None] * self.count
            column.extend(values)
        self.count += n
        for column in self.inputs.values():
            if len(column) < self.count:
                column.extend([None] * (self.count - len(column)))

    def table(self, deployment: str) -> pa.Table | None:
        import pyarrow as pa

        if not self.count:
            return None
        columns = {
            "prediction_id": pa.array(self.ids, pa.string()),
            "time": pa.array(self.times, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "deployment": pa.array([deployment] * self.count, pa.string()),
            "model_version": pa.array(self.versions, pa.string()),
            "role": pa.array(self.roles, pa.string()),
            **{f"inputs.{name}": _column(values) for name, values in self.inputs.items()},
            "prediction": _column(self.outputs),
            "probabilities": pa.array(self.probas, pa.list_(pa.float64())),
            "latency_ms": pa.array(self.latencies, pa.float64()),
        }
        return pa.table(columns)


class _LabelColumns:
    """Label records, added one at a time, as a table of id, label (JSON text) and time."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.labels: list[str] = []
        self.times: list[int] = []

    def add(self, record: Mapping[str, Any]) -> None:
        self.ids.extend(record["ids"])
        # Kept as JSON text on disk: the type never changes between files.
        self.labels.extend(json.dumps(v) for v in record["labels"])
        self.times.extend([record["t"]] * len(record["ids"]))

    def table(self) -> pa.Table | None:
        import pyarrow as pa

        if not self.ids:
            return None
        return pa.table(
            {
                "prediction_id": pa.array(self.ids, pa.string()),
                "label_json": pa.array(self.labels, pa.string()),
                "label_time": pa.array(self.times, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            }
        )


def _prediction_table(deployment: str, records: Iterable[Mapping[str, Any]]) -> pa.Table | None:
    columns = _PredictionColumns()
    for record in records:
        if record.get("k") == "p":
            columns.add(record)
    return columns.table(deployment)


# ------------------------------------------------------------------ reading


def _to_ms(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidInput(
        f"{what} must be a datetime or milliseconds since the epoch; got {value!r}.",
        hint="Pass e.g. datetime.now(UTC) - timedelta(hours=1).",
    )


def _read_files(
    blobs: BlobStore,
    files: Sequence[Mapping[str, Any]],
    kind: str,
    start: int | None,
    end: int | None,
) -> list[pa.Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for entry in files:
        if entry["kind"] != kind:
            continue
        if kind == "predictions" and (
            (start is not None and entry["end_ms"] < start)
            or (end is not None and entry["start_ms"] >= end)
        ):
            continue
        tables.append(pq.read_table(pa.BufferReader(blobs.get(entry["digest"]))))
    return tables


def _concat(tables: list[pa.Table]) -> pa.Table | None:
    import pyarrow as pa

    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive")


def read(
    folder: Path,
    blobs: BlobStore,
    deployment: str,
    *,
    start: Any = None,
    end: Any = None,
    labels: bool = True,
    shadow: bool = False,
) -> pa.Table:
    """Compacted and uncompacted predictions of a deployment in ``[start, end)``, labels joined;
    the shadow's rows only with ``shadow=True``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    start_ms, end_ms = _to_ms(start, "start"), _to_ms(end, "end")
    snapshot = _snapshot(folder)
    table = _concat(
        [
            *_read_files(blobs, snapshot.files, "predictions", start_ms, end_ms),
            _prediction_table(deployment, snapshot.records),
        ]
    )
    if table is None:
        table = _empty_predictions()
    table = _with_roles(table, shadow=shadow)
    if start_ms is not None or end_ms is not None:
        ms = pc.cast(table.column("time"), pa.int64())
        mask = pc.and_(
            pc.greater_equal(ms, start_ms) if start_ms is not None else pc.is_valid(ms),
            pc.less(ms, end_ms) if end_ms is not None else pc.is_valid(ms),
        )
        table = table.filter(mask)
    if table.num_rows:
        table = table.take(
            pc.sort_indices(table, [("time", "ascending")])  # stable: log order within a ms
        )
    if not labels:
        return table
    return _join_labels(table, _labels(blobs, snapshot))


def stored_labels(folder: Path, blobs: BlobStore) -> dict[str, tuple[Any, int]]:
    """Every label of the log in ``folder``, compacted or not: prediction id -> (label, time
    it was stored in ms), the latest for each id."""
    return _labels(blobs, _snapshot(folder))


def _labels(blobs: BlobStore, snapshot: _Snapshot) -> dict[str, tuple[Any, int]]:
    """prediction id -> (label, time in ms), the last label for each id winning."""
    import pyarrow as pa

    found: list[tuple[int, str, Any]] = []
    for table in _read_files(blobs, snapshot.files, "labels", None, None):
        times = table.column("label_time").cast(pa.int64()).to_pylist()
        for pid, text, ms in zip(
            table.column("prediction_id").to_pylist(),
            table.column("label_json").to_pylist(),
            times,
            strict=True,
        ):
            found.append((ms, pid, json.loads(text)))
    for record in snapshot.records:
        if record.get("k") == "l":
            found.extend(
                (record["t"], pid, v)
                for pid, v in zip(record["ids"], record["labels"], strict=True)
            )
    found.sort(key=lambda item: item[0])
    return {pid: (label, ms) for ms, pid, label in found}


def _join_labels(table: pa.Table, labels: Mapping[str, tuple[Any, int]]) -> pa.Table:
    import pyarrow as pa

    ids = table.column("prediction_id").to_pylist()
    got = [labels.get(pid) for pid in ids]
    label_values = [g[0] if g is not None else None for g in got]
    label_times = [g[1] if g is not None else None for g in got]
    label = (
        _column(label_values) if any(v is not None for v in label_values) else pa.nulls(len(ids))
    )
    return table.append_column("label", label).append_column(
        "label_time", pa.array(label_times, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    )


def _with_roles(table: pa.Table, *, shadow: bool) -> pa.Table:
    """The ``role`` column filled in (files written before it existed hold primaries only),
    the shadow's rows dropped unless asked for."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "role" in table.column_names:
        roles = pc.fill_null(table.column("role"), PRIMARY)
        table = table.set_column(table.column_names.index("role"), "role", roles)
    else:
        roles = pa.array([PRIMARY] * table.num_rows, pa.string())
        table = table.add_column(table.column_names.index("model_version") + 1, "role", roles)
    if shadow:
        return table
    return table.filter(pc.not_equal(table.column("role"), SHADOW))


def _empty_predictions() -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "prediction_id": pa.array([], pa.string()),
            "time": pa.array([], pa.timestamp("ms", tz="UTC")),
            "deployment": pa.array([], pa.string()),
            "model_version": pa.array([], pa.string()),
            "role": pa.array([], pa.string()),
            "prediction": pa.array([], pa.null()),
            "probabilities": pa.array([], pa.list_(pa.float64())),
            "latency_ms": pa.array([], pa.float64()),
        }
    )


def known_ids(folder: Path, blobs: BlobStore, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` the deployment's log holds (compacted or not)."""
    wanted = set(ids)
    if not wanted:
        return set()
    snapshot = _snapshot(folder)
    found: set[str] = set()
    for record in snapshot.records:
        if record.get("k") == "p":
            found.update(wanted.intersection(record["ids"]))
    if found == wanted:
        return found
    import pyarrow as pa
    import pyarrow.parquet as pq

    for entry in snapshot.files:
        if entry["kind"] != "predictions":
            continue
        table = pq.read_table(
            pa.BufferReader(blobs.get(entry["digest"])), columns=["prediction_id"]
        )
        found.update(wanted.intersection(table.column("prediction_id").to_pylist()))
        if found == wanted:
            break
    return found


def check_labels(labels: Any) -> tuple[list[str], list[Any]]:
    """``[{"prediction_id": ..., "label": ...}, ...]`` as two lists, or InvalidInput."""
    if not isinstance(labels, list | tuple) or not labels:
        raise InvalidInput(
            f"Labels are a non-empty list of {{'prediction_id': ..., 'label': ...}}; got "
            f"{type(labels).__name__ if not isinstance(labels, list | tuple) else 'an empty list'}.",
            hint='Send [{"prediction_id": "<id from /predict>", "label": 1}, ...].',
        )
    ids, values = [], []
    for number, item in enumerate(labels):
        if not isinstance(item, Mapping) or set(item) != {"prediction_id", "label"}:
            raise InvalidInput(
                f"Label {number} must be an object with exactly 'prediction_id' and 'label'; "
                f"got {item!r:.200}.",
                hint='Send [{"prediction_id": "<id from /predict>", "label": 1}, ...].',
            )
        pid, label = item["prediction_id"], item["label"]
        if not isinstance(pid, str) or not pid:
            raise InvalidInput(
                f"Label {number}: prediction_id must be a non-empty string; got {pid!r:.100}."
            )
        if label is not None and not isinstance(label, str | int | float | bool):
            raise InvalidInput(
                f"Label {number}: a label is a string, number, boolean or null; got "
                f"{type(label).__name__}.",
                hint="Send the ground truth as the model's target value, e.g. 1 or 'good'.",
            )
        ids.append(pid)
        values.append(label)
    return ids, values


def store_labels(
    log: PredictionLog, blobs: BlobStore, ids: list[str], values: list[Any]
) -> tuple[list[str], list[Any], list[str]]:
    """Split labels into known and unknown ids; return (ids, labels, unknown) to append."""
    known = known_ids(log.folder, blobs, ids)
    keep = [(pid, v) for pid, v in zip(ids, values, strict=True) if pid in known]
    unknown = list(dict.fromkeys(pid for pid in ids if pid not in known))
    return [p for p, _ in keep], [v for _, v in keep], unknown


def label_record(ids: list[str], values: list[Any]) -> dict[str, Any]:
    return {"k": "l", "t": time.time_ns() // 1_000_000, "ids": ids, "labels": values}


# ------------------------------------------------------------------ the public functions


def _home_and_blobs(client: Client | None) -> tuple[Path, BlobStore]:
    from shipyard.tracking import Client

    client = client or Client()
    return client.settings.home, client.blobs


def predictions(
    deployment: str,
    start: Any = None,
    end: Any = None,
    *,
    labels: bool = True,
    shadow: bool = False,
    client: Client | None = None,
) -> pa.Table:
    """Every logged prediction of ``deployment`` with ``start <= time < end``, as Arrow.

    ``start`` and ``end`` are datetimes (naive means UTC) or ms since the epoch.
    The rows answered requests (``role`` ``primary`` or ``canary``); ``shadow=True``
    adds the shadow's rows, whose ids repeat those of the rows they shadowed.
    Reads the compacted Parquet files and the records not yet compacted, so a
    prediction is readable as soon as it was answered. Labels are joined by
    prediction id (``label``, ``label_time``) unless ``labels=False``. The
    columns are described in :mod:`shipyard.serving._log`.
    """
    home, blobs = _home_and_blobs(client)
    return read(
        log_folder(home, deployment),
        blobs,
        deployment,
        start=start,
        end=end,
        labels=labels,
        shadow=shadow,
    )


def log_labels(
    deployment: str, labels: Sequence[Mapping[str, Any]], *, client: Client | None = None
) -> dict[str, Any]:
    """Store ground truth for logged predictions: ``[{"prediction_id", "label"}, ...]``.

    Returns ``{"stored": n, "unknown": [ids]}``: ids the deployment never
    answered are reported, not stored. Stored labels are on disk when this returns.
    """
    home, blobs = _home_and_blobs(client)
    ids, values = check_labels(list(labels) if not isinstance(labels, list) else labels)
    log = PredictionLog(log_folder(home, deployment))
    try:
        keep_ids, keep_values, unknown = store_labels(log, blobs, ids, values)
        if keep_ids:
            log.append_sync([label_record(keep_ids, keep_values)])
    finally:
        log.close()
    return {"stored": len(keep_ids), "unknown": unknown}
