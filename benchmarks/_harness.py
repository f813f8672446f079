"""Shared machinery for benchmarks that compare Shipyard with a peer tool.

The rules (see PEERS.md): the peer lives in a virtual environment of its own,
made here and reused; every measurement is a fresh subprocess against a fresh
store; peer and Shipyard alternate, one unmeasured warm-up round comes first,
and medians and their ratio are reported, never an absolute time alone.

Two halves live here, and only the standard library is imported at module
level, because the worker half also runs under the peer's interpreter:

- parent side: :func:`ensure_venv`, :class:`Side`, :func:`run_worker`,
  :func:`compare`, :func:`compare_rounds`, :func:`alternate`, :class:`Case`,
  :class:`Outcome`, :func:`print_outcome`, :func:`print_table`,
  :func:`write_json`; for servers :class:`Server`, :func:`free_port`,
  :func:`group_cpu_seconds` and :func:`group_rss_bytes`;
- worker side: :class:`Stopwatch` and :func:`emit`; for load generators
  :class:`HttpConnection` (pre-encoded requests, no client library in the way)
  and :func:`percentile`.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import time
import venv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
ENVS_DIR = BENCH_DIR / ".envs"
RESULTS_DIR = BENCH_DIR / "results"
_READY_MARKER = ".bench-ready"
_RESULT_PREFIX = "BENCH-RESULT "
T = TypeVar("T")


class BenchError(RuntimeError):
    """A benchmark step failed: a venv could not be made or a worker broke."""


# ---------------------------------------------------------------- peer venvs


def ensure_venv(name: str, requirements: Sequence[str], *, timeout: float = 1800) -> Path:
    """Return the python of ``ENVS_DIR/name``, creating it with ``requirements``.

    An environment is reused when its marker file lists exactly the same
    requirements; otherwise it is rebuilt. Raises :class:`BenchError` if pip
    fails or runs past ``timeout`` seconds.
    """
    root = ENVS_DIR / name
    python = root / "bin" / "python"
    marker = root / _READY_MARKER
    wanted = "\n".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"creating peer environment {root} with {' '.join(requirements)} ...", flush=True)
    venv.EnvBuilder(clear=True, with_pip=True).create(root)
    command = [str(python), "-m", "pip", "install", "--quiet", *requirements]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"pip install {requirements} ran past {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"pip install {requirements} failed:\n{done.stderr[-2000:]}")
    marker.write_text(wanted)
    return python


# ------------------------------------------------------------------ workers


@dataclass(frozen=True)
class Side:
    """One contender: a label, the python that runs its worker, and extra env."""

    label: str
    python: Path
    env: Mapping[str, str] = field(default_factory=dict)


def run_worker(
    side: Side,
    script: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
) -> dict:
    """Run ``script args`` under ``side.python`` in ``cwd`` and return the JSON it emitted.

    The worker's environment is this process's, plus ``side.env``, plus
    ``env``. Raises :class:`BenchError` on a non-zero exit, a time-out, or a
    missing result line.
    """
    full_env = {**os.environ, **side.env, **(env or {})}
    command = [str(side.python), str(script), *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{side.label} worker {args} ran past {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(
            f"{side.label} worker {args} exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            return json.loads(line.removeprefix(_RESULT_PREFIX))
    raise BenchError(f"{side.label} worker {args} printed no result:\n{done.stdout[-2000:]}")


class Stopwatch:
    """Worker side: time only the block inside ``with Stopwatch() as watch:``."""

    seconds: float

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start


def emit(result: Mapping[str, object]) -> None:
    """Worker side: hand ``result`` back to the parent as one JSON line."""
    print(_RESULT_PREFIX + json.dumps(result), flush=True)


# -------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Case:
    """What one comparison measures and what Shipyard must reach.

    ``higher_is_better`` says whether the value is a rate (ratio = ours/peer)
    or a latency (ratio = peer/ours); either way a ratio above 1 means Shipyard
    is faster. ``min_ratio`` is the goal; ``max_value`` optionally bounds
    Shipyard's own median (e.g. a latency ceiling).
    """

    key: str
    title: str
    unit: str
    higher_is_better: bool
    min_ratio: float
    max_value: float | None = None

    @property
    def goal(self) -> str:
        """The goal in words, e.g. ``>= 5x, < 50 ms``."""
        text = f">= {self.min_ratio:g}x"
        if self.max_value is not None:
            text = f"< {self.max_value:g} {self.unit}, {text}"
        return text


@dataclass(frozen=True)
class Outcome:
    """The samples of one case for both sides, with medians, ratio and verdict."""

    case: Case
    peer_samples: list[float]
    ours_samples: list[float]

    @property
    def peer_median(self) -> float:
        """Median of the peer's measured rounds."""
        return statistics.median(self.peer_samples)

    @property
    def ours_median(self) -> float:
        """Median of Shipyard's measured rounds."""
        return statistics.median(self.ours_samples)

    @property
    def ratio(self) -> float:
        """How many times faster Shipyard is (above 1) or slower (below 1)."""
        if self.case.higher_is_better:
            return self.ours_median / self.peer_median
        return self.peer_median / self.ours_median

    @property
    def met(self) -> bool:
        """Whether Shipyard reached the case's goal."""
        ceiling = self.case.max_value
        within = ceiling is None or self.ours_median < ceiling
        return within and self.ratio >= self.case.min_ratio

    def as_dict(self) -> dict:
        """A small JSON-ready summary."""
        return {
            "title": self.case.title,
            "unit": self.case.unit,
            "peer_median": round(self.peer_median, 3),
            "shipyard_median": round(self.ours_median, 3),
            "peer_samples": [round(v, 3) for v in self.peer_samples],
            "shipyard_samples": [round(v, 3) for v in self.ours_samples],
            "ratio": round(self.ratio, 2),
            "goal": self.case.goal,
            "met": self.met,
        }


def compare(
    case: Case,
    peer: Callable[[], float],
    ours: Callable[[], float],
    *,
    repeat: int,
    warmup: int = 1,
) -> Outcome:
    """Measure ``peer`` and ``ours`` alternately and return the :class:`Outcome`.

    Each callable runs one fresh worker and returns its value. ``warmup``
    unmeasured rounds come first; then ``repeat`` rounds, the order flipping
    each round (peer first, then Shipyard first, ...) so neither side always
    follows the other.
    """
    peer_samples, ours_samples = alternate([peer, ours], repeat=repeat, warmup=warmup)
    return Outcome(case, peer_samples, ours_samples)


def alternate(
    measures: Sequence[Callable[[], T]], *, repeat: int, warmup: int = 1
) -> list[list[T]]:
    """Run every callable once per round and return each one's results, in order.

    ``warmup`` unmeasured rounds come first; then ``repeat`` rounds, the order
    rotating each round (A B C, then B C A, ...; for two: A B, then B A) so
    that no contender always runs first or always follows the same one.
    """
    for _ in range(warmup):
        for measure in measures:
            measure()
    results: list[list[T]] = [[] for _ in measures]
    for round_no in range(repeat):
        shift = round_no % len(measures)
        for index in [*range(shift, len(measures)), *range(shift)]:
            results[index].append(measures[index]())
    return results


# ---------------------------------------------------------------- reporting


def _fmt(value: float) -> str:
    """A value with a sensible number of digits."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def print_outcome(outcome: Outcome, peer_label: str) -> None:
    """Print one case's medians, ratio and goal as soon as it is measured."""
    case = outcome.case
    verdict = "met" if outcome.met else "MISSED"
    print(
        f"({case.key}) {case.title}: {peer_label} {_fmt(outcome.peer_median)} {case.unit}, "
        f"Shipyard {_fmt(outcome.ours_median)} {case.unit} -> {outcome.ratio:.1f}x "
        f"(goal {case.goal}: {verdict})",
        flush=True,
    )


def print_table(outcomes: Sequence[Outcome], peer_label: str, title: str) -> None:
    """Print the final table with rich (Shipyard's environment has it)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("case", f"{peer_label} median", "Shipyard median", "ratio", "goal", "met"):
        table.add_column(column, justify="left" if column in ("case", "goal") else "right")
    for outcome in outcomes:
        case = outcome.case
        table.add_row(
            f"({case.key}) {case.title}",
            f"{_fmt(outcome.peer_median)} {case.unit}",
            f"{_fmt(outcome.ours_median)} {case.unit}",
            f"{outcome.ratio:.1f}x",
            case.goal,
            "yes" if outcome.met else "[bold red]no[/]",
        )
    console = Console()
    if not console.is_terminal:
        console.width = 120  # a log file: no need to wrap at 80 columns
    console.print(table)


def write_json(name: str, payload: Mapping[str, object]) -> Path:
    """Write ``payload`` to ``benchmarks/results/<name>.json`` and return the path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# ------------------------------------------------------------------ servers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str, *, timeout: float, process: subprocess.Popen | None = None, interval: float = 0.2
) -> float:
    """Poll ``url`` until it answers 2xx; return the seconds waited.

    Raises :class:`BenchError` after ``timeout`` seconds, or as soon as
    ``process`` (the server, if given) has exited.
    """
    import urllib.error
    import urllib.request

    started = time.perf_counter()
    deadline = started + timeout
    last = "no answer yet"
    while time.perf_counter() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchError(f"the server exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return time.perf_counter() - started
                last = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(interval)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s ({last})")


def stop_process_group(process: subprocess.Popen, *, timeout: float = 15) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it spawned.

    SIGTERM to its process group (whose id is the process's pid), a bounded
    wait, then SIGKILL to the group for whatever is left.
    """
    import signal

    pgid = process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            process.poll()
            try:
                os.killpg(pgid, 0)  # is any member of the group still alive?
            except ProcessLookupError:
                break
            time.sleep(0.1)
    process.wait(timeout=timeout)


def compare_rounds(
    cases: Sequence[Case],
    peer: Callable[[], Mapping[str, float]],
    ours: Callable[[], Mapping[str, float]],
    *,
    repeat: int,
    warmup: int = 1,
) -> list[Outcome]:
    """Like :func:`compare`, for a measurement that yields several cases at once.

    Each callable returns ``{case.key: value}`` for every case (e.g. one
    server session measuring several loads); the rounds alternate as in
    :func:`compare`, and one :class:`Outcome` per case is returned.
    """
    peer_rounds, ours_rounds = alternate([peer, ours], repeat=repeat, warmup=warmup)
    return [
        Outcome(c, [r[c.key] for r in peer_rounds], [r[c.key] for r in ours_rounds]) for c in cases
    ]


class Server:
    """Run a server for the length of a ``with`` block.

    ``with Server(command, health_url=..., log_path=...) as server:`` starts
    ``command`` in a session of its own (stdout and stderr to ``log_path``),
    waits until ``health_url`` answers 2xx, then (with ``quiet_timeout``) until
    the server's processes are idle (:func:`wait_until_quiet`: some servers
    spawn helpers after they answer), and gives itself: ``process``,
    ``startup_s`` (spawn to first 2xx), ``settle_s`` and ``settled`` (the
    quiet wait and whether it ended quiet) and :meth:`log_text`. On leaving, the
    process and all it spawned are stopped by :func:`stop_process_group`.
    Raises :class:`BenchError`, with the log's tail, if the server does not
    come up within ``timeout`` seconds.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        health_url: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
        quiet_timeout: float = 0,
    ) -> None:
        self.command, self.health_url, self.log_path = list(command), health_url, log_path
        self.env, self.cwd, self.timeout = {**os.environ, **(env or {})}, cwd, timeout
        self.quiet_timeout = quiet_timeout
        self.process: subprocess.Popen | None = None
        self.startup_s = 0.0
        self.settle_s = 0.0
        self.settled = True

    def __enter__(self) -> Server:
        started = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        try:
            wait_for_http(self.health_url, timeout=self.timeout, process=self.process)
        except BaseException as exc:
            stop_process_group(self.process)
            if isinstance(exc, BenchError):
                tail = self.log_text()[-3000:]
                raise BenchError(f"{self.command[0]} did not start: {exc}\n{tail}") from exc
            raise
        self.startup_s = time.perf_counter() - started
        if self.quiet_timeout > 0:
            settle_started = time.perf_counter()
            self.settled = wait_until_quiet(self.process.pid, timeout=self.quiet_timeout)
            self.settle_s = time.perf_counter() - settle_started
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            stop_process_group(self.process)

    def log_text(self) -> str:
        """What the server has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


def _group_stats(pgid: int) -> list[list[str]]:
    """The ``/proc/PID/stat`` fields after ``(comm)`` of each live process in group ``pgid``
    (state, ppid, pgrp, ...; Linux)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            found.append(fields)
    return found


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid`` (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f[11]) + int(f[12]) for f in _group_stats(pgid)) / ticks  # utime, stime


def group_rss_bytes(pgid: int) -> int:
    """Resident memory of the live processes in process group ``pgid``, summed (Linux).

    A server's supervisor and its workers together: what the machine must hold
    for it (pages shared between them, such as forked libraries, count once each).
    """
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(int(f[21]) for f in _group_stats(pgid)) * page  # rss, in pages


def wait_until_quiet(
    pgid: int,
    *,
    timeout: float,
    interval: float = 1.0,
    max_cpu_share: float = 0.05,
    quiet_intervals: int = 2,
) -> bool:
    """Wait until process group ``pgid`` uses under ``max_cpu_share`` of a core.

    Quiet means ``quiet_intervals`` intervals in a row each below the share.
    Returns whether it got quiet within ``timeout`` seconds.
    """
    deadline = time.perf_counter() + timeout
    quiet, last = 0, group_cpu_seconds(pgid)
    while time.perf_counter() < deadline:
        time.sleep(interval)
        now = group_cpu_seconds(pgid)
        quiet = quiet + 1 if now - last < max_cpu_share * interval else 0
        last = now
        if quiet >= quiet_intervals:
            return True
    return False


# ------------------------------------------------------------ load generators


def http_request(
    method: str,
    path: str,
    host: str,
    body: bytes = b"",
    content_type: str = "application/json",
) -> bytes:
    """One HTTP/1.1 request, encoded once so that the clock only sees sending it."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class HttpConnection:
    """One keep-alive HTTP/1.1 connection for asyncio load generators.

    It sends requests made by :func:`http_request` and reads each response
    (``Content-Length`` or chunked) with no client library in between, so that
    one process can load a fast server from 16 connections while spending
    little CPU itself (on 2 cores the client shares the machine with the server).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: Any = None
        self._writer: Any = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw``; return the response's status and body (connecting first if needed)."""
        import asyncio

        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        try:
            self._writer.write(raw)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, chunked = None, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
            if chunked:
                body = await self._chunked_body()
            elif length is not None:
                body = await self._reader.readexactly(length)
            else:
                raise BenchError(f"a response without a length: {head[:300]!r}")
        except BaseException:
            self.close()  # a half-read response: the next request gets a new connection
            raise
        return status, body

    async def _chunked_body(self) -> bytes:
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await self._reader.readexactly(size + 2))  # the chunk and its CRLF
            if size == 0:
                while (await self._reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(p[:-2] for p in parts)

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` 0.99 for p99) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(round(len(ordered) * share, 6)))  # 2000 * 0.99 is 1980.0000000000002
    return ordered[rank - 1]
