"""Reliability under real processes: concurrency, migration races, crashes, signals.

Every child is a separate Python process started from ``_workers.py`` with the
store URI in ``SHIPYARD_URI``, exactly like a user's training script; results
are read back through :class:`shipyard.Client`. Each test runs on SQLite and
on PostgreSQL (the ``store_uri`` fixture). Every wait is bounded in time.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import shipyard
from shipyard import RunStatus
from shipyard.store import _store
from shipyard.store.migrations import HEAD_REVISION

WORKERS = Path(__file__).with_name("_workers.py")
START_TIMEOUT_S = 60.0  # a child's imports plus its first transaction, on a busy 2-core box
FINISH_TIMEOUT_S = 120.0


# ------------------------------------------------------------------------ harness


class Child:
    """A child process running one ``_workers.py`` command; stdout read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKERS), *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def next_line(self, timeout: float = START_TIMEOUT_S) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"child {self.args[0]} printed nothing for {timeout}s; stderr:\n{self.stderr}"
            ) from None
        if line is None:
            self.proc.wait(10)
            raise AssertionError(
                f"child {self.args[0]} exited {self.proc.returncode} early; stderr:\n{self.stderr}"
            )
        return line

    def release(self) -> None:
        """Let a child blocked in ``wait_for_parent`` carry on."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = FINISH_TIMEOUT_S) -> int:
        """Wait for exit and for all of its output; return the exit code."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def env(store_uri: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a child: the test's store, its own home, default settings."""
    return {
        **os.environ,  # conftest removed any SHIPYARD_* and isolated XDG_CONFIG_HOME
        "SHIPYARD_URI": store_uri,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_ACTOR": "child",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:  # type: ignore[type-arg]
    """``spawn(args, env)`` starts a child; every child is killed and reaped at teardown."""
    children: list[Child] = []
    workdir = tmp_path / "cwd"  # no shipyard.toml here
    workdir.mkdir()

    def start(args: list[str], env: dict[str, str], **settings: object) -> Child:
        child_env = dict(env)
        for name, value in settings.items():
            child_env[f"SHIPYARD_{name.upper()}"] = str(value)
        child = Child(args, child_env, workdir)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


@pytest.fixture(autouse=True)
def _dispose_stores(tmp_path: Path) -> Iterator[None]:
    """Close the parent's engines on this test's SQLite file (conftest does PostgreSQL)."""
    yield
    for store in [v for k, v in _store._stores.items() if str(tmp_path) in k]:
        store.close()


def release_barrier(folder: Path, parties: int, timeout: float = START_TIMEOUT_S) -> None:
    """Wait until ``parties`` children wait at the file barrier, then let them all go."""
    deadline = time.monotonic() + timeout
    while len(list(folder.glob("ready-*"))) < parties:
        assert time.monotonic() < deadline, (
            f"only {len(list(folder.glob('ready-*')))} of {parties} children reached the barrier"
        )
        time.sleep(0.01)
    (folder / "go").touch()


def assert_clean_exit(child: Child) -> None:
    code = child.wait()
    assert code == 0, f"{child.args[0]} exited {code}; stderr:\n{child.stderr}"
    assert child.stderr == "", f"{child.args[0]} wrote to stderr:\n{child.stderr}"


def steps(client: shipyard.Client, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def sqlite_path(store_uri: str) -> str | None:
    url = sa.engine.make_url(store_uri)
    return url.database if url.get_backend_name() == "sqlite" else None


def assert_sqlite_intact(store_uri: str) -> None:
    path = sqlite_path(store_uri)
    if path is None:
        return
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


# ------------------------------------------------------- 1. concurrent fluent logging

WRITERS = 8
POINTS = 2_000


@pytest.mark.slow
def test_concurrent_fluent_logging_loses_nothing(store_uri, env, spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """8 processes x 2,000 log_metric calls at once: 16,000 points, each where it belongs."""
    shipyard.Client(store_uri).upgrade_db()  # they race on writing here, not on migrating
    gate = tmp_path / "gate"
    gate.mkdir()
    children = [
        spawn(
            ["log_many", "--barrier", str(gate), "--worker", str(n), "--points", str(POINTS)],
            env,
            # Small batches and a busy background flusher: many concurrent write transactions.
            flush_size=50,
            flush_interval=0.02,
        )
        for n in range(WRITERS)
    ]
    release_barrier(gate, WRITERS)
    reports = [json.loads(child.next_line(FINISH_TIMEOUT_S)) for child in children]
    for child in children:
        assert_clean_exit(child)

    # The children really did log at the same time: the last one started before the first ended.
    assert max(r["start"] for r in reports) < min(r["end"] for r in reports)

    client = shipyard.Client(store_uri)
    total = 0
    for worker, report in enumerate(reports):
        run = client.get_run(report["run_id"])
        assert (run.name, run.status) == (f"worker-{worker}", RunStatus.FINISHED)
        history = client.get_metric_history(report["run_id"], "loss")
        total += len(history)
        assert [m.step for m in history] == list(range(POINTS)), f"worker {worker}"
        assert [m.value for m in history] == [worker * 1_000_000 + s for s in range(POINTS)]
        assert run.metrics["loss"].step == POINTS - 1
    assert total == WRITERS * POINTS
    assert len(client.search_runs("stress", max_results=100).runs) == WRITERS

    actions = [e.action for e in client.audit_events(object_type="run")]
    assert sorted(actions) == ["run.create"] * WRITERS + ["run.end"] * WRITERS
    assert client.verify_audit().ok
    assert_sqlite_intact(store_uri)


STARTERS = 8
NEW_EXPERIMENTS = 5


@pytest.mark.slow
def test_concurrent_start_run_into_a_new_experiment_creates_it_once(  # type: ignore[no-untyped-def]
    store_uri, env, spawn, tmp_path
) -> None:
    """Processes starting runs in the same not-yet-existing experiment all succeed."""
    shipyard.Client(store_uri).upgrade_db()
    gate = tmp_path / "gate"
    gate.mkdir()
    children = [
        spawn(
            [
                "start_runs",
                "--barrier",
                str(gate),
                "--worker",
                str(n),
                "--experiments",
                str(NEW_EXPERIMENTS),
            ],
            env,
        )
        for n in range(STARTERS)
    ]
    release_barrier(gate, STARTERS)
    for child in children:
        assert_clean_exit(child)

    client = shipyard.Client(store_uri)
    names = [f"shared-{n}" for n in range(NEW_EXPERIMENTS)]
    assert sorted(e.name for e in client.list_experiments()) == names
    for name in names:
        runs = client.search_runs(name, max_results=100).runs
        assert sorted(r.name for r in runs) == sorted(f"worker-{n}" for n in range(STARTERS))
        assert {r.status for r in runs} == {RunStatus.FINISHED}
    assert len(client.audit_events(object_type="experiment")) == NEW_EXPERIMENTS
    assert client.verify_audit().ok


# ------------------------------------------------------------- 2. migration race

OPENERS = 16


@pytest.mark.slow
def test_concurrent_first_open_migrates_exactly_once(store_uri, env, spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """16 processes open one fresh store at once: one migrates, the rest find it current."""
    gate = tmp_path / "gate"
    gate.mkdir()
    children = [
        spawn(["upgrade", "--barrier", str(gate), "--worker", str(n)], env) for n in range(OPENERS)
    ]
    release_barrier(gate, OPENERS)
    results = [json.loads(child.next_line(FINISH_TIMEOUT_S)) for child in children]
    for child in children:
        assert_clean_exit(child)
    assert sorted(results) == [False] * (OPENERS - 1) + [True]

    engine = sa.create_engine(store_uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
            heads = conn.exec_driver_sql("SELECT id, seq, hash FROM audit_head").all()
    finally:
        engine.dispose()
    assert versions == [(HEAD_REVISION,)]
    assert heads == [(1, 0, "0" * 64)]

    client = shipyard.Client(store_uri)
    assert client.upgrade_db() is False
    assert client.verify_audit().ok
    client.create_experiment("usable")  # the migrated store takes writes
    assert client.verify_audit().checked == 1
    assert_sqlite_intact(store_uri)


# ------------------------------------------------------------- 3. SIGKILL mid-write

KILL_ROUNDS = (200, 700, 1500)  # points flushed before the kill, one child per round


@pytest.mark.slow
def test_sigkill_mid_logging_keeps_flushed_points_and_a_sound_store(store_uri, env, spawn) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL while logging: the store is intact and every flushed point is in it."""
    shipyard.Client(store_uri).upgrade_db()
    for round_, kill_after in enumerate(KILL_ROUNDS):
        # A busy background flusher too, so the kill often lands inside a transaction.
        child = spawn(
            ["flush_until_killed", "--name", f"victim-{round_}", "--every", "100"],
            env,
            flush_interval=0.01,
            flush_size=100_000,
        )
        run_id = child.next_line()
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while int(child.next_line()) < kill_after:
            assert time.monotonic() < deadline
        child.signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL
        # Every count printed was printed after its flush() and set_tag() returned.
        flushed = max(int(line) for line in child.stdout[1:])
        assert flushed >= kill_after

        assert_sqlite_intact(store_uri)
        client = shipyard.Client(store_uri)
        stored = steps(client, run_id, "x")
        assert len(stored) >= flushed
        assert stored == list(range(len(stored)))  # flushed in order: a prefix, no gaps
        run = client.get_run(run_id)
        assert int(run.tags["flushed"]) >= flushed
        assert run.status is RunStatus.RUNNING  # the default heartbeat timeout is 60 s
        report = client.verify_audit()
        assert report.ok, str(report)
    # The next writer after each kill got through: all the rounds' runs are there.
    assert len(client.search_runs("crash").runs) == len(KILL_ROUNDS)


# ---------------------------------------------------------------- 4. run lifecycle

HOLD_POINTS = 500


def reader_with(
    store_uri: str, monkeypatch: pytest.MonkeyPatch, **settings: object
) -> shipyard.Client:
    """A parent-side Client whose own settings (e.g. heartbeat_timeout) are ``settings``."""
    for name, value in settings.items():
        monkeypatch.setenv(f"SHIPYARD_{name.upper()}", str(value))
    return shipyard.Client(store_uri)


@pytest.mark.parametrize("bare", [False, True], ids=["with-block", "bare-start_run"])
def test_sigterm_ends_run_killed_and_writes_buffered_points(store_uri, env, spawn, bare) -> None:  # type: ignore[no-untyped-def]
    args = ["hold", "--name", "terminated", "--points", str(HOLD_POINTS)]
    # Nothing is flushed before the signal: a high interval and a flush size never reached.
    child = spawn([*args, "--bare"] if bare else args, env, flush_interval=60, flush_size=100_000)
    run_id = child.next_line()
    client = shipyard.Client(store_uri)
    assert client.get_run(run_id).status is RunStatus.RUNNING
    assert client.get_metric_history(run_id, "m") == []  # still buffered in the child
    child.signal(signal.SIGTERM)
    code = child.wait()
    assert code in (128 + signal.SIGTERM, -signal.SIGTERM), child.stderr
    assert "Traceback" not in child.stderr, child.stderr

    run = client.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert run.end_time is not None
    assert steps(client, run_id, "m") == list(range(HOLD_POINTS))
    assert client.verify_audit().ok


def test_sigint_ends_run_killed_and_writes_buffered_points(store_uri, env, spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn(
        ["hold", "--name", "interrupted", "--points", str(HOLD_POINTS)],
        env,
        flush_interval=60,
        flush_size=100_000,
    )
    run_id = child.next_line()
    client = shipyard.Client(store_uri)
    assert client.get_metric_history(run_id, "m") == []
    child.signal(signal.SIGINT)
    code = child.wait()
    assert code in (128 + signal.SIGINT, -signal.SIGINT), child.stderr
    assert "KeyboardInterrupt" in child.stderr

    run = client.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert steps(client, run_id, "m") == list(range(HOLD_POINTS))


def test_exception_in_with_block_ends_run_failed(store_uri, env, spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn(
        ["fail", "--name", "broken", "--points", "50"], env, flush_interval=60, flush_size=100_000
    )
    run_id = child.next_line()
    assert child.wait() == 1
    assert "RuntimeError: the training script failed" in child.stderr

    client = shipyard.Client(store_uri)
    run = client.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.end_time is not None
    assert steps(client, run_id, "m") == list(range(50))


def test_run_started_without_with_ends_finished_at_exit(store_uri, env, spawn) -> None:  # type: ignore[no-untyped-def]
    child = spawn(
        ["hold", "--name", "bare", "--points", "50", "--bare"],
        env,
        flush_interval=60,
        flush_size=100_000,
    )
    run_id = child.next_line()
    client = shipyard.Client(store_uri)
    assert client.get_run(run_id).status is RunStatus.RUNNING
    child.release()  # the script returns; the interpreter exits normally
    assert_clean_exit(child)

    run = client.get_run(run_id)
    assert run.status is RunStatus.FINISHED
    assert steps(client, run_id, "m") == list(range(50))


HEARTBEAT_INTERVAL = 0.2
HEARTBEAT_TIMEOUT = 1.5


@pytest.mark.slow
def test_sigkilled_run_shows_failed_after_heartbeat_timeout_live_one_does_not(  # type: ignore[no-untyped-def]
    store_uri, env, spawn, monkeypatch
) -> None:
    heartbeat = {"heartbeat_interval": HEARTBEAT_INTERVAL, "heartbeat_timeout": HEARTBEAT_TIMEOUT}
    shipyard.Client(store_uri).create_experiment("lifecycle")  # not what this test races on
    victim = spawn(["hold", "--name", "victim"], env, **heartbeat)
    survivor = spawn(["hold", "--name", "survivor"], env, **heartbeat)
    victim_id, survivor_id = victim.next_line(), survivor.next_line()
    client = reader_with(store_uri, monkeypatch, **heartbeat)
    alive_since = time.monotonic()

    time.sleep(3 * HEARTBEAT_INTERVAL)  # a few heartbeats
    victim.signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    killed_at = time.monotonic()

    # RUNNING until the heartbeat times out, then FAILED, while the survivor stays RUNNING.
    seen: list[tuple[float, RunStatus, RunStatus]] = []
    deadline = killed_at + HEARTBEAT_TIMEOUT + 5.0
    while time.monotonic() < deadline:
        victim_status = client.get_run(victim_id).status
        survivor_status = client.get_run(survivor_id).status
        seen.append((time.monotonic() - killed_at, victim_status, survivor_status))
        if (
            victim_status is RunStatus.FAILED
            and time.monotonic() - alive_since > 2 * HEARTBEAT_TIMEOUT
        ):
            break
        time.sleep(0.05)
    failed_after = [t for t, status, _ in seen if status is RunStatus.FAILED]
    assert failed_after, f"the killed run never showed FAILED: {seen}"
    assert {status for t, status, _ in seen if t < failed_after[0]} <= {RunStatus.RUNNING}
    assert failed_after[0] >= HEARTBEAT_TIMEOUT - HEARTBEAT_INTERVAL - 0.3, seen
    assert all(status is RunStatus.FAILED for t, status, _ in seen if t >= failed_after[0])
    # The survivor outlived the timeout twice over and heartbeated all along.
    assert time.monotonic() - alive_since > 2 * HEARTBEAT_TIMEOUT
    assert {status for _, _, status in seen} == {RunStatus.RUNNING}
    assert [r.run_id for r in client.search_runs("lifecycle", filter="status = 'FAILED'").runs] == [
        victim_id
    ]
    assert [
        r.run_id for r in client.search_runs("lifecycle", filter="status = 'RUNNING'").runs
    ] == [survivor_id]

    survivor.release()
    assert_clean_exit(survivor)
    assert client.get_run(survivor_id).status is RunStatus.FINISHED
    assert client.get_run(victim_id).status is RunStatus.FAILED
    assert client.verify_audit().ok


@pytest.mark.slow
def test_background_flush_honours_flush_interval(store_uri, env, spawn) -> None:  # type: ignore[no-untyped-def]
    """Buffered points reach the store every flush_interval seconds: not later, not sooner."""
    shipyard.Client(store_uri).create_experiment("lifecycle")  # not what this test races on
    eager = spawn(
        ["hold", "--name", "eager", "--points", "100"], env, flush_interval=0.2, flush_size=100_000
    )
    lazy = spawn(
        ["hold", "--name", "lazy", "--points", "100"],
        env,
        flush_interval=60,
        flush_size=100_000,
        heartbeat_interval=HEARTBEAT_INTERVAL,  # heartbeats are due often; flushes are not
    )
    eager_id, lazy_id = eager.next_line(), lazy.next_line()
    client = shipyard.Client(store_uri)
    deadline = time.monotonic() + 10.0
    while len(client.get_metric_history(eager_id, "m")) < 100:
        assert time.monotonic() < deadline, "the background flush never wrote the points"
        time.sleep(0.05)
    time.sleep(1.5)  # longer than any internal tick of the background thread
    assert client.get_metric_history(lazy_id, "m") == [], (
        "points were flushed long before SHIPYARD_FLUSH_INTERVAL=60 elapsed"
    )
    for child in (eager, lazy):
        child.release()
        assert_clean_exit(child)
    assert steps(client, lazy_id, "m") == list(range(100))  # written when the run ended


# ------------------------------------------------- 8. concurrent model registration

REGISTRARS = 8
THREADS_EACH = 4


@pytest.mark.slow
def test_concurrent_registrations_number_versions_1_to_32(store_uri, env, spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """8 processes x 4 threads register one model at once: versions 1..32, no gap, no error."""
    shipyard.Client(store_uri).upgrade_db()
    gate = tmp_path / "gate"
    gate.mkdir()
    children = [
        spawn(
            [
                "register_models",
                "--barrier",
                str(gate),
                "--worker",
                str(n),
                "--threads",
                str(THREADS_EACH),
            ],
            env,
        )
        for n in range(REGISTRARS)
    ]
    release_barrier(gate, REGISTRARS)
    reports = [json.loads(child.next_line(FINISH_TIMEOUT_S)) for child in children]
    for child in children:
        assert_clean_exit(child)

    assert [r["errors"] for r in reports] == [[]] * REGISTRARS
    total = REGISTRARS * THREADS_EACH
    assert sorted(v for r in reports for v in r["versions"]) == list(range(1, total + 1))
    client = shipyard.Client(store_uri)
    stored = client.model_versions("shared")
    assert [v.version for v in stored] == list(range(1, total + 1))
    assert client.get_model("shared").latest_version == total
    created = client.audit_events(object_type="model")
    assert sorted(e.action for e in created) == ["model.create"] + ["model.version.create"] * total
    assert client.verify_audit().ok
    assert_sqlite_intact(store_uri)
