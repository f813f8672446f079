"""Shipyard's prediction server against `mlflow models serve`: same model, same rows, same load.

One scikit-learn model, a 100-tree ``RandomForestClassifier`` on 20 numeric
features (trained on 2,000 seeded ``make_classification`` rows, identically on
both sides: same scikit-learn, checked by a digest of its probabilities), is
registered as ``credit@champion`` in an MLflow store (in MLflow's venv) and in
a Shipyard store (which also gets its ONNX export), untimed. Then each round
serves it on loopback with the same number of uvicorn workers:

- MLflow: ``mlflow models serve -m models:/credit@champion --env-manager local``;
- Shipyard: ``shipyard serve models:/credit@champion`` (every prediction is in
  the durable prediction log before it is answered), ``--runtime auto`` (the
  default, which serves the ONNX export here: the headline) and
  ``--runtime native`` (the scikit-learn forest itself).

One load-generator process (asyncio over raw keep-alive HTTP/1.1 connections,
every request encoded before the clock starts) measures each server:

  sequential single rows, one connection: p50 and p99 after a warm-up       ms
  16 concurrent clients for a fixed time: throughput, and p99         req/s, ms
  one 10,000-row batch: median of 5 after one warm-up                        ms

and, as an extra line that is not part of the comparison, Shipyard's time for
the same 10,000 rows sent as an Arrow IPC stream (a body MLflow does not read).

Both get the same rows as the same JSON numbers, in the format each reads:
MLflow ``POST /invocations {"dataframe_split": {"columns": [...], "data":
[[...]]}}``, Shipyard ``POST /predict {"columns": [...], "data": [[...]]}``.
Every answer is checked: each row, in the batch and alone, must get MLflow's
class (except on a tie of the forest's votes, see :meth:`Bench.check_predictions`),
and each Shipyard deployment's log must hold exactly the rows it answered.

Logging cost: the app ``shipyard serve`` runs (``create_serving_app``) started
by uvicorn with the same options, with the prediction log on, on without
``fdatasync``, and off; 16-client throughput. Goal: on costs at most 20%.

Soak (``--soak N``, instead of the comparison): N requests from 16 clients to
``shipyard serve``; the server's resident memory after the warm-up (the first
tenth) and at the end. Goal: it grows by less than 10%.

Usage: ``.venv/bin/python benchmarks/serving.py [--repeat N] [--workers N]
[--seconds S] [--quick] [--soak N]``. MLflow runs from
``benchmarks/.envs/mlflow-<version>-sklearn/`` (``registry.py``'s environment).
Results: printed, and written to ``benchmarks/results/serving.json`` (the soak:
``serving-soak.json``).

The same file is the preparing worker (``--worker mlflow|shipyard --store DIR``),
the load generator (``--worker load ...``) and, for the logging cost, the
uvicorn app factory (:func:`logging_variant_app`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _harness import (
    BENCH_DIR,
    BenchError,
    Case,
    HttpConnection,
    Outcome,
    Server,
    Side,
    alternate,
    emit,
    free_port,
    group_cpu_seconds,
    group_rss_bytes,
    http_request,
    percentile,
    print_outcome,
    print_table,
    run_worker,
    write_json,
)
from registry import (
    BYTECODE,
    MLFLOW_ENV,
    MODEL_URI,
    mlflow_log,
    mlflow_python,
    shipyard_export,
    shipyard_log,
)
from registry import Sizes as ModelSizes

SCRIPT = Path(__file__).resolve()
HOST = "127.0.0.1"
MODEL = ModelSizes(rows=2_000, features=20, trees=100)
QUICK_MODEL = ModelSizes(rows=500, features=20, trees=20)
ROWS_SEED = 11
STARTUP_TIMEOUT = 120
QUIET_TIMEOUT = 15
WORKER_TIMEOUT = 900
REQUEST_TIMEOUT = 60
KEEP_ERRORS = 5
#: fdatasync calls timed before and after the rounds (:func:`fdatasync_latency`).
FSYNC_PROBES = 300
#: A soak stops after this long, whatever it has sent.
SOAK_LIMIT_S = 1_800
#: The logging-cost app reads its options from this variable (see :func:`logging_variant_app`).
VARIANT_VARIABLE = "SHIPYARD_BENCH_SERVING_VARIANT"
LOG_MODES = ("on", "nosync", "off")
#: Class probabilities closer than this are a tie (see :meth:`Bench.check_predictions`).
TIE_TOLERANCE = 1e-9
ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: The extra line: the batch as Arrow IPC, Shipyard only (MLflow reads no Arrow body).
ARROW_BATCH = Case("batch_arrow", "one 10,000-row batch as Arrow IPC", "ms", False, min_ratio=3)

CASES = {
    "seq_p50": Case("seq_p50", "sequential single row, p50", "ms", False, min_ratio=1),
    "seq_p99": Case("seq_p99", "sequential single row, p99", "ms", False, min_ratio=5),
    "rps": Case("rps", "16 clients, throughput", "req/s", True, min_ratio=5),
    "conc_p99": Case("conc_p99", "16 clients, p99", "ms", False, min_ratio=5),
    "batch": Case("batch", "one 10,000-row batch", "ms", False, min_ratio=3),
}
LOG_CASES = {
    # The "peer" is the same server with the log off: ratio = throughput on / off.
    "on": Case(
        "log_on", "16 clients, log on (synced to disk) vs off", "req/s", True, min_ratio=0.8
    ),
    "nosync": Case("log_nosync", "16 clients, log not synced vs off", "req/s", True, min_ratio=0.8),
}


@dataclass(frozen=True)
class Load:
    """How much each measurement sends."""

    seq_warmup: int
    seq_requests: int
    clients: int
    warmup_seconds: float
    seconds: float
    batch_rows: int
    batch_repeat: int


FULL = Load(
    seq_warmup=200,
    seq_requests=2_000,
    clients=16,
    warmup_seconds=1.0,
    seconds=5.0,
    batch_rows=10_000,
    batch_repeat=5,
)
QUICK = Load(
    seq_warmup=50,
    seq_requests=300,
    clients=16,
    warmup_seconds=0.5,
    seconds=1.5,
    batch_rows=10_000,
    batch_repeat=2,
)


# ================================================================ preparing worker
# Runs under each side's python: the MLflow venv's or the project's.


def prepare(side: str, store: Path, sizes: ModelSizes) -> dict:
    """Train the forest, register it as credit@champion in ``store`` (and export ONNX)."""
    if side == "mlflow":
        return mlflow_log(store, sizes)
    result = shipyard_log(store, sizes)
    shipyard_export(store, sizes)
    return result


# ================================================================ load generator
# Runs under the project's python; numpy only here.


def request_rows(count: int, features: int) -> tuple[list[str], list[list[float]]]:
    """``count`` seeded rows of ``features`` values (6 decimals), and the column names."""
    import numpy as np

    values = np.random.default_rng(ROWS_SEED).normal(0.0, 2.0, size=(count, features)).round(6)
    return [f"f{i}" for i in range(features)], values.tolist()


class Wire:
    """One side's routes and bodies: the same rows in the format that side reads."""

    def __init__(self, side: str, host: str, columns: list[str]) -> None:
        self.side, self.host, self.columns = side, host, columns

    def predict(self, rows: list[list[float]]) -> bytes:
        """A pre-encoded prediction request for ``rows``."""
        frame = {"columns": self.columns, "data": rows}
        if self.side == "mlflow":
            body, path = {"dataframe_split": frame}, "/invocations"
        else:
            body, path = frame, "/predict"
        return http_request("POST", path, self.host, json.dumps(body).encode())

    def predict_arrow(self, rows: list[list[float]]) -> bytes:
        """A pre-encoded Shipyard request for ``rows`` as an Arrow IPC stream."""
        import pyarrow as pa

        table = pa.table({name: [row[i] for row in rows] for i, name in enumerate(self.columns)})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return http_request(
            "POST", "/predict", self.host, sink.getvalue().to_pybytes(), content_type=ARROW_STREAM
        )

    @staticmethod
    def predictions(body: bytes) -> list[Any]:
        """The predicted classes of an answer (both sides answer ``{"predictions": [...]}``)."""
        return json.loads(body)["predictions"]


class Errors:
    """Failed requests: counted, the first few kept."""

    def __init__(self) -> None:
        self.count, self.samples = 0, []

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.samples) < KEEP_ERRORS:
            self.samples.append(text[:1000])


async def _send(http: HttpConnection, raw: bytes, errors: Errors) -> bytes | None:
    """One request; the body of a 200, or None (the failure recorded)."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):  # no task per request, unlike wait_for
            status, body = await http.request(raw)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, BenchError) as exc:
        errors.add(f"{type(exc).__name__}: {exc}")
        return None
    if status != 200:
        errors.add(f"HTTP {status}: {body[:500]!r}")
        return None
    return body


async def sequential(
    http: HttpConnection, requests: list[bytes], load: Load, errors: Errors
) -> tuple[dict, list[Any]]:
    """Single rows one after another on one connection: p50, p99, and each row's class."""
    for i in range(load.seq_warmup):
        await _send(http, requests[i % len(requests)], errors)
    latencies, answers = [], []
    cpu = time.process_time()
    started = time.perf_counter()
    for i in range(load.seq_requests):
        sent = time.perf_counter()
        body = await _send(http, requests[i % len(requests)], errors)
        latencies.append(time.perf_counter() - sent)
        answers.append(None if body is None else Wire.predictions(body)[0])
    wall = time.perf_counter() - started
    return {
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "requests": load.seq_requests,
        "client_cpu_s": time.process_time() - cpu,
        "wall_s": wall,
    }, answers


async def concurrent(
    connections: list[HttpConnection],
    requests: list[bytes],
    seconds: float,
    errors: Errors,
    *,
    stop_after: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Every connection sends requests back to back for ``seconds`` (or until
    ``stop_after`` answers in all); throughput over the time until the last answer."""
    latencies: list[float] = []
    done = [0]
    deadline = time.perf_counter() + seconds

    async def client(offset: int, http: HttpConnection) -> None:
        i = offset
        while time.perf_counter() < deadline and (stop_after is None or done[0] < stop_after):
            sent = time.perf_counter()
            body = await _send(http, requests[i % len(requests)], errors)
            if body is not None:
                latencies.append(time.perf_counter() - sent)
                done[0] += 1
                if on_progress is not None:
                    on_progress(done[0])
            i += 1

    cpu = time.process_time()
    started = time.perf_counter()
    step = max(1, len(requests) // len(connections))
    await asyncio.gather(*(client(n * step, http) for n, http in enumerate(connections)))
    wall = time.perf_counter() - started
    if not latencies:
        raise BenchError(f"no request was answered in {seconds:.1f} s: {errors.samples}")
    return {
        "rps": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "requests": len(latencies),
        "client_cpu_s": time.process_time() - cpu,
        "wall_s": wall,
    }


async def batch(http: HttpConnection, raw: bytes, load: Load, errors: Errors) -> tuple[dict, dict]:
    """One big batch, ``batch_repeat`` times after one warm-up: its median, and the
    warm-up's answer (``predictions``, and Shipyard's ``probabilities``)."""
    body = await _send(http, raw, errors)
    answer = {} if body is None else json.loads(body)
    times = []
    for _ in range(load.batch_repeat):
        sent = time.perf_counter()
        if await _send(http, raw, errors) is not None:
            times.append(time.perf_counter() - sent)
    if not times:
        raise BenchError(f"no batch was answered: {errors.samples}")
    samples_ms = [t * 1000 for t in times]
    return {"median_ms": statistics.median(samples_ms), "samples_ms": samples_ms}, answer


async def measure(
    side: str, port: int, features: int, load: Load, phases: list[str], pgid: int
) -> dict:
    """The load-generator process: the chosen phases against one server (process group
    ``pgid``, whose CPU time per measured 16-client request is reported too)."""
    columns, rows = request_rows(load.batch_rows, features)
    wire = Wire(side, f"{HOST}:{port}", columns)
    singles = [wire.predict([row]) for row in rows[: load.seq_warmup + load.seq_requests]]
    errors = Errors()
    result: dict[str, Any] = {}
    connections = [HttpConnection(HOST, port) for _ in range(load.clients)]
    answered = 0  # rows answered, warm-ups included: what the prediction log must hold
    try:
        if "batch" in phases:
            result["batch"], answer = await batch(connections[0], wire.predict(rows), load, errors)
            answered += len(rows) * (1 + len(result["batch"]["samples_ms"]))
            result["predictions"] = answer.get("predictions", [])
            result["probabilities"] = answer.get("probabilities")
            if side != "mlflow":
                raw = wire.predict_arrow(rows)
                result["batch_arrow"], arrow = await batch(connections[0], raw, load, errors)
                answered += len(rows) * (1 + len(result["batch_arrow"]["samples_ms"]))
                if arrow.get("predictions") != result["predictions"]:
                    errors.add("the Arrow batch got other predictions than the JSON batch")
        if "seq" in phases:
            result["seq"], result["seq_predictions"] = await sequential(
                connections[0], singles, load, errors
            )
            answered += load.seq_warmup + sum(a is not None for a in result["seq_predictions"])
        if "conc" in phases:
            warm = await concurrent(connections, singles, load.warmup_seconds, errors)
            cpu = group_cpu_seconds(pgid)
            result["conc"] = conc = await concurrent(connections, singles, load.seconds, errors)
            conc["server_cpu_ms_per_request"] = (
                (group_cpu_seconds(pgid) - cpu) * 1000 / conc["requests"]
            )
            answered += warm["requests"] + conc["requests"]
    finally:
        for http in connections:
            http.close()
    result["rows_answered"] = answered
    result["errors"] = errors.count
    result["error_samples"] = errors.samples
    return result


async def soak(port: int, features: int, load: Load, total: int, warmup: int, pgid: int) -> dict:
    """``total`` requests from ``load.clients`` connections; the server group's RSS sampled
    at the start, after ``warmup`` requests, every tenth of the rest, and at the end."""
    columns, rows = request_rows(load.batch_rows, features)
    wire = Wire("shipyard", f"{HOST}:{port}", columns)
    singles = [wire.predict([row]) for row in rows]
    errors = Errors()
    samples: list[tuple[int, float, int]] = [(0, 0.0, group_rss_bytes(pgid))]
    every = max(1, (total - warmup) // 10)
    started = time.perf_counter()

    def on_progress(done: int) -> None:
        if done == warmup or (done > warmup and (done - warmup) % every == 0):
            samples.append((done, time.perf_counter() - started, group_rss_bytes(pgid)))

    connections = [HttpConnection(HOST, port) for _ in range(load.clients)]
    try:
        result = await concurrent(
            connections, singles, SOAK_LIMIT_S, errors, stop_after=total, on_progress=on_progress
        )
    finally:
        for http in connections:
            http.close()
    if samples[-1][0] != result["requests"]:
        samples.append((result["requests"], time.perf_counter() - started, group_rss_bytes(pgid)))
    return {
        "conc": result,
        "rss": [{"requests": n, "seconds": round(s, 1), "bytes": b} for n, s, b in samples],
        "errors": errors.count,
        "error_samples": errors.samples,
    }


def count_logged(deployments: list[str]) -> dict:
    """Rows in each deployment's prediction log (run with ``SHIPYARD_HOME`` = the store)."""
    from shipyard import serving

    return {name: serving.predictions(name, labels=False).num_rows for name in deployments}


# ======================================================= the logging-cost app


def logging_variant_app() -> Any:
    """uvicorn factory: the app ``shipyard serve`` runs, with the prediction log as
    ``SHIPYARD_BENCH_SERVING_VARIANT`` says (``{"log": "on"|"nosync"|"off", "runtime",
    "deployment"}``); uvicorn is started with the options ``shipyard serve`` gives it."""
    from shipyard.serving import create_serving_app

    options = json.loads(os.environ[VARIANT_VARIABLE])
    return create_serving_app(
        MODEL_URI,
        deployment=options["deployment"],
        runtime=options["runtime"],
        log_predictions=options["log"] != "off",
        sync=options["log"] == "on",
    )


# ==================================================================== parent side


@dataclass(frozen=True)
class Contender:
    """How to start one server on a prepared store."""

    key: str
    label: str
    command: Callable[[int, int, str], list[str]]  # (port, workers, deployment)
    env: Mapping[str, str]
    ready_path: str
    store: Path


def mlflow_contender(python: Path, store: Path) -> Contender:
    """``mlflow models serve`` from its venv, as PEERS.md runs it."""
    bin_dir = python.parent

    def command(port: int, workers: int, deployment: str) -> list[str]:
        return [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            MODEL_URI,
            "--env-manager",
            "local",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]

    env = {
        # It starts uvicorn by name: the venv's bin/ goes first on PATH.
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(bin_dir.parent),
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db",
        **MLFLOW_ENV,
    }
    return Contender("mlflow", "MLflow", command, env, "/ping", store)


def shipyard_contender(store: Path, runtime: str) -> Contender:
    """``shipyard serve`` from the project's venv; each session logs to a deployment of its own."""
    shipyard = Path(sys.executable).parent / "shipyard"

    def command(port: int, workers: int, deployment: str) -> list[str]:
        return [
            str(shipyard),
            "serve",
            MODEL_URI,
            "--deployment",
            deployment,
            "--runtime",
            runtime,
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]

    label = f"Shipyard {runtime}"
    return Contender(
        f"shipyard-{runtime}", label, command, {"SHIPYARD_HOME": str(store)}, "/ready", store
    )


def logging_contender(store: Path) -> Contender:
    """:func:`logging_variant_app` under ``python -m uvicorn`` with ``shipyard serve``'s options."""

    def command(port: int, workers: int, deployment: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            f"{SCRIPT.stem}:{logging_variant_app.__name__}",
            "--factory",
            "--app-dir",
            str(BENCH_DIR),
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-server-header",
            "--no-access-log",
            "--log-level",
            "info",
            "--timeout-graceful-shutdown",
            "30",
        ]

    return Contender("log", "log", command, {"SHIPYARD_HOME": str(store)}, "/ready", store)


def _ready_runtime(base: str) -> str | None:
    """The runtime a Shipyard server reports on ``/ready`` (None for MLflow)."""
    import urllib.request

    with urllib.request.urlopen(base + "/ready", timeout=10) as response:
        return json.loads(response.read()).get("runtime")


class Bench:
    """Runs server sessions and keeps what each reported."""

    def __init__(self, load: Load, quick: bool, workers: int, logs: Path) -> None:
        self.load, self.quick, self.workers, self.logs = load, quick, workers, logs
        self.sessions: list[dict] = []
        self.answers: dict[int, dict] = {}
        self.deployments: dict[Path, list[str]] = {}

    def session(
        self, contender: Contender, phases: list[str], mode: str = "on"
    ) -> dict[str, float]:
        """Start ``contender``'s server, run the load generator, stop it; {case: value}."""
        number = len(self.sessions) + 1
        deployment = f"bench-{number:03d}"
        key, label = contender.key, contender.label
        if contender.key == "log":
            key, label = f"log-{mode}", f"log {mode}"
        port = free_port(HOST)
        base = f"http://{HOST}:{port}"
        env = dict(contender.env)
        if contender.key == "log":
            env[VARIANT_VARIABLE] = json.dumps(
                {"log": mode, "runtime": "auto", "deployment": deployment}
            )
        load_1min = os.getloadavg()[0]
        server = Server(
            contender.command(port, self.workers, deployment),
            health_url=base + contender.ready_path,
            log_path=self.logs / f"{number:03d}-{key}.log",
            env=env,
            cwd=contender.store,
            timeout=STARTUP_TIMEOUT,
            quiet_timeout=QUIET_TIMEOUT,
        )
        with server:
            assert server.process is not None
            pgid = server.process.pid
            runtime = None if contender.key == "mlflow" else _ready_runtime(base)
            args = ["--worker", "load", "--port", str(port), "--side", contender.key]
            args += ["--phases", ",".join(phases), "--pgid", str(pgid)]
            try:
                result = run_worker(
                    Side("load", Path(sys.executable)),
                    SCRIPT,
                    [*args, "--quick"] if self.quick else args,
                    timeout=WORKER_TIMEOUT,
                )
            except BenchError as exc:
                tail = server.log_text()[-4000:]
                raise BenchError(f"{exc}\n--- {label} server log ---\n{tail}") from exc
            rss = group_rss_bytes(pgid)
        if contender.key != "mlflow" and mode != "off":
            self.deployments.setdefault(contender.store, []).append(deployment)
        record = self._record(key, result, phases, number, deployment, runtime)
        record.update(
            load_1min=round(load_1min, 2),
            startup_s=round(server.startup_s, 2),
            settle_s=round(server.settle_s, 2),
            server_rss_mb=round(rss / 2**20, 1),
        )
        self.sessions.append(record)
        self._report(label, record)
        values = {"rps": result["conc"]["rps"], "conc_p99": result["conc"]["p99_ms"]}
        if "seq" in result:
            values.update(seq_p50=result["seq"]["p50_ms"], seq_p99=result["seq"]["p99_ms"])
        if "batch" in result:
            values["batch"] = result["batch"]["median_ms"]
        if "batch_arrow" in result:
            values["batch_arrow"] = result["batch_arrow"]["median_ms"]
        return values

    def _record(
        self,
        key: str,
        result: dict,
        phases: list[str],
        number: int,
        deployment: str,
        runtime: str | None,
    ) -> dict:
        """The session's JSON record; its answers are kept aside for :meth:`check_predictions`."""
        self.answers[number] = {
            name: result.pop(name, None)
            for name in ("predictions", "probabilities", "seq_predictions")
        }
        return {
            "session": number,
            "side": key,
            "deployment": None if key == "mlflow" else deployment,
            "runtime": runtime,
            "phases": phases,
            **{k: result[k] for k in ("seq", "conc", "batch", "batch_arrow") if k in result},
            "rows_answered": result["rows_answered"],
            "errors": result["errors"],
            "error_samples": result["error_samples"],
        }

    def check_predictions(self) -> dict:
        """Compare every session's classes with MLflow's, row by row.

        A difference is tolerated only on a tie: a row where the forest's class
        probabilities (Shipyard native's, computed by scikit-learn in float64)
        are equal, as when 50 of 100 trees vote for each class. scikit-learn
        then picks the first class; onnxruntime sums the votes in float32 in an
        order that depends on the batch (trees in parallel for one row), so it
        may pick either, and not even the same one alone and in a batch.
        """
        by_side = {s["side"]: self.answers[s["session"]] for s in self.sessions if "batch" in s}
        reference = by_side["mlflow"]["predictions"]
        proba = by_side["shipyard-native"]["probabilities"]
        ties = {i for i, p in enumerate(proba) if max(p) - sorted(p)[-2] < TIE_TOLERANCE}
        checked = {"rows": len(reference), "ties": len(ties), "sessions": {}}
        for record in self.sessions:
            answers = self.answers[record["session"]]
            if answers["predictions"] is None:
                continue
            seq = answers["seq_predictions"]
            differ = [
                i
                for i, (a, b) in enumerate(zip(answers["predictions"], reference, strict=True))
                if a != b
            ]
            differ_seq = [
                i % len(reference)
                for i, a in enumerate(seq)
                if a is not None and a != reference[i % len(reference)]
            ]
            off_tie = sorted({i for i in differ + differ_seq if i not in ties})
            found = {
                "batch_rows": len(differ),
                "single_rows": len(differ_seq),
                "not_ties": len(off_tie),
            }
            record["mismatched"] = checked["sessions"][record["session"]] = found
            if differ or differ_seq:
                print(
                    f"  {'!!' if off_tie else '  '} session {record['session']} ({record['side']}): "
                    f"{len(differ)} of {len(reference):,} batch rows and {len(differ_seq)} single "
                    f"rows predicted differently from MLflow, {len(off_tie)} of them not ties",
                    flush=True,
                )
        print(
            f"predictions checked against MLflow's on {len(reference):,} rows "
            f"({len(ties)} ties in the forest's probabilities)",
            flush=True,
        )
        return checked

    def _report(self, label: str, record: dict) -> None:
        """One line per session; loud lines for errors and disagreeing predictions."""
        parts = [f"  {label:16} load={record['load_1min']:.2f}"]
        parts.append(f"start {record['startup_s']:.1f} s")
        if "seq" in record:
            seq = record["seq"]
            parts.append(f"seq p50 {seq['p50_ms']:.2f} / p99 {seq['p99_ms']:.2f} ms")
        conc = record["conc"]
        parts.append(
            f"16 clients {conc['rps']:,.0f} req/s p99 {conc['p99_ms']:.1f} ms "
            f"(client CPU {conc['client_cpu_s']:.1f}/{conc['wall_s']:.1f} s, server "
            f"{conc['server_cpu_ms_per_request']:.2f} ms CPU/request)"
        )
        if "batch" in record:
            parts.append(f"batch {record['batch']['median_ms']:.0f} ms")
        if "batch_arrow" in record:
            parts.append(f"(as Arrow {record['batch_arrow']['median_ms']:.0f} ms)")
        parts.append(f"RSS {record['server_rss_mb']:.0f} MB")
        print(", ".join(parts), flush=True)
        if record["errors"]:
            print(f"  !! {record['errors']} failed requests: {record['error_samples']}", flush=True)

    def verify_logs(self) -> dict[str, dict]:
        """Count each Shipyard session's logged rows against the rows it was answered."""
        answered = {s["deployment"]: s["rows_answered"] for s in self.sessions if s["deployment"]}
        found: dict[str, dict] = {}
        for store, deployments in self.deployments.items():
            args = ["--worker", "count", "--deployments", ",".join(deployments)]
            counted = run_worker(
                Side("count", Path(sys.executable)),
                SCRIPT,
                args,
                env={"SHIPYARD_HOME": str(store)},
                timeout=WORKER_TIMEOUT,
            )
            for name, rows in counted.items():
                found[name] = {"logged": rows, "answered": answered[name]}
        for name, counts in found.items():
            if counts["logged"] != counts["answered"]:
                print(
                    f"  !! deployment {name}: {counts['logged']} rows logged, "
                    f"{counts['answered']} answered",
                    flush=True,
                )
        return found


def _prepare(python: Path, root: Path, sizes_flag: list[str]) -> tuple[Path, Path, dict]:
    """Register the same forest in an MLflow store and a Shipyard store (untimed)."""
    stores, fingerprints, versions = {}, {}, {}
    sides = {
        "mlflow": (Side("MLflow", python, {**BYTECODE, **MLFLOW_ENV}), "MLFLOW_TRACKING_URI"),
        "shipyard": (Side("Shipyard", Path(sys.executable), BYTECODE), "SHIPYARD_HOME"),
    }
    for key, (side, variable) in sides.items():
        store = root / key
        store.mkdir()
        value = f"sqlite:///{store}/mlflow.db" if key == "mlflow" else str(store)
        started = time.perf_counter()
        result = run_worker(
            side,
            SCRIPT,
            ["--worker", key, "--store", str(store), *sizes_flag],
            env={variable: value},
            cwd=store,
            timeout=WORKER_TIMEOUT,
        )
        print(f"prepared {side.label}'s store in {time.perf_counter() - started:.0f} s", flush=True)
        stores[key], fingerprints[key] = store, result["fingerprint"]
        versions[key] = result["version"]
        versions[f"{key}_libraries"] = result["libraries"]
    if len(set(fingerprints.values())) != 1:
        raise BenchError(f"the two sides trained different models: {fingerprints}")
    versions["fingerprint"] = fingerprints["mlflow"]
    return stores["mlflow"], stores["shipyard"], versions


def _outcomes(
    rounds: Mapping[str, list[dict[str, float]]], peer: str, ours: str, cases: Mapping[str, Case]
) -> list[Outcome]:
    """One :class:`Outcome` per ``{value key: case}``, from two contenders' rounds."""
    return [
        Outcome(case, [r[key] for r in rounds[peer]], [r[key] for r in rounds[ours]])
        for key, case in cases.items()
    ]


def fdatasync_latency(folder: Path, count: int = FSYNC_PROBES) -> dict[str, float]:
    """p50 and p99 (ms) of ``fdatasync`` after appending one log-sized record in ``folder``.

    A logged request is answered only after such a sync, so on one connection
    Shipyard's latency cannot go below it: the figure to read the sequential
    p99 against."""
    path = folder / "fdatasync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        times = []
        for _ in range(count):
            os.write(fd, b"x" * 600)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return {"p50_ms": percentile(times, 0.5) * 1000, "p99_ms": percentile(times, 0.99) * 1000}


def _header() -> tuple[float, tuple[float, float, float]]:
    """Install the signal handlers that stop servers, print the load; (start time, load)."""
    # Stop the servers on SIGTERM too, and on SIGINT even when started in the background.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load = os.getloadavg()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in load)} ({os.cpu_count()} CPUs)")
    return time.perf_counter(), load


def run_parent(args: argparse.Namespace) -> None:
    """The comparison: prepare both stores, alternate the servers, table, JSON."""
    started, load_before = _header()
    python, requirement = mlflow_python()
    load = _load(args)
    sizes_flag = ["--quick"] if args.quick else []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        mlflow_store, shipyard_store, versions = _prepare(python, root, sizes_flag)
        logs = root / "logs"
        logs.mkdir()
        disk = {"before": fdatasync_latency(shipyard_store)}
        print(
            f"fdatasync of a 600-byte append here: p50 {disk['before']['p50_ms']:.2f} ms, "
            f"p99 {disk['before']['p99_ms']:.2f} ms",
            flush=True,
        )
        bench = Bench(load, args.quick, args.workers, logs)
        main = [
            mlflow_contender(python, mlflow_store),
            shipyard_contender(shipyard_store, "auto"),
            shipyard_contender(shipyard_store, "native"),
        ]
        print(
            f"--- {args.repeat} rounds of {', '.join(c.label for c in main)} "
            f"({args.workers} worker(s) each), the order rotating",
            flush=True,
        )
        phases = ["batch", "seq", "conc"]
        main_rounds = alternate(
            [lambda c=c: bench.session(c, phases) for c in main], repeat=args.repeat, warmup=0
        )
        rounds = {c.key: r for c, r in zip(main, main_rounds, strict=True)}
        variant = logging_contender(shipyard_store)
        print(
            f"--- logging cost: {args.repeat} rounds of the serving app with the log "
            f"{', '.join(LOG_MODES)} (runtime auto)",
            flush=True,
        )
        log_rounds = alternate(
            [lambda m=m: bench.session(variant, ["conc"], m) for m in LOG_MODES],
            repeat=args.repeat,
            warmup=0,
        )
        rounds.update({f"log-{m}": r for m, r in zip(LOG_MODES, log_rounds, strict=True)})
        disk["after"] = fdatasync_latency(shipyard_store)
        logged = bench.verify_logs()
        checked = bench.check_predictions()
    by_runtime = {
        runtime: _outcomes(rounds, "mlflow", f"shipyard-{runtime}", CASES)
        for runtime in ("auto", "native")
    }
    # The extra line: Shipyard's Arrow body against MLflow's JSON one (the only one it reads).
    arrow_batch = {
        runtime: Outcome(
            ARROW_BATCH,
            [r["batch"] for r in rounds["mlflow"]],
            [r["batch_arrow"] for r in rounds[f"shipyard-{runtime}"]],
        )
        for runtime in ("auto", "native")
    }
    log_outcomes = [
        outcome
        for mode in ("on", "nosync")
        for outcome in _outcomes(rounds, "log-off", f"log-{mode}", {"rps": LOG_CASES[mode]})
    ]
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    runtimes = {s["side"]: s["runtime"] for s in bench.sessions if s["runtime"]}
    mlflow_version = versions.get("mlflow", requirement)
    for runtime, outcomes in by_runtime.items():
        for outcome in outcomes:
            print_outcome(outcome, f"MLflow vs {runtime}")
        served = runtimes.get(f"shipyard-{runtime}")
        headline = " (headline)" if runtime == "auto" else ""
        print_table(
            outcomes,
            "MLflow",
            f"shipyard serve --runtime {runtime} (serving {served}){headline} vs mlflow models "
            f"serve {mlflow_version}, {args.workers} worker(s) each, log on (median of "
            f"{args.repeat})",
        )
    for runtime, outcome in arrow_batch.items():
        print(
            f"extra, not the headline: the 10,000-row batch sent to shipyard serve --runtime "
            f"{runtime} as Arrow IPC: {outcome.ours_median:.1f} ms, "
            f"{outcome.ratio:.1f}x MLflow's JSON batch ({outcome.peer_median:.1f} ms)",
            flush=True,
        )
    for outcome in log_outcomes:
        print_outcome(outcome, "log off")
    print_table(log_outcomes, "log off", "Logging cost: throughput with the log vs without")
    cost = 1 - log_outcomes[0].ratio
    print(f"prediction logging costs {cost:.0%} of 16-client throughput (goal <= 20%)")
    verified = _verified(bench.sessions, logged)
    print(
        "every answer agreed with MLflow's and was logged, no request failed"
        if verified
        else "!! PREDICTIONS DIFFERED, REQUESTS FAILED OR LOGGED ROWS WENT MISSING: see above"
    )
    path = write_json(
        "serving",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mlflow": mlflow_version,
            "shipyard": versions.get("shipyard"),
            "libraries": {k: versions.get(f"{k}_libraries") for k in ("mlflow", "shipyard")},
            "model": {
                **asdict(QUICK_MODEL if args.quick else MODEL),
                "kind": "RandomForestClassifier",
            },
            "model_fingerprint": versions["fingerprint"],
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": {
                "start": [round(v, 2) for v in load_before],
                "end": [round(v, 2) for v in load_after],
            },
            "repeat": args.repeat,
            "workers": args.workers,
            "load": asdict(load),
            "headline_runtime": "auto",
            "fdatasync_ms": disk,
            "runtimes_served": runtimes,
            "cases": {
                runtime: {o.case.key: o.as_dict() for o in outcomes}
                for runtime, outcomes in by_runtime.items()
            },
            "extra_batch_as_arrow": {
                runtime: outcome.as_dict() for runtime, outcome in arrow_batch.items()
            },
            "logging_cost": {
                **{o.case.key: o.as_dict() for o in log_outcomes},
                "cost_share": round(cost, 3),
            },
            "logged_rows": logged,
            "predictions_checked": checked,
            "verified": verified,
            "sessions": bench.sessions,
            "wall_s": round(elapsed, 1),
        },
    )
    print(f"results written to {path}; whole benchmark took {elapsed:.0f} s")
    if not verified:
        sys.exit(1)


def _verified(sessions: list[dict], logged: dict[str, dict]) -> bool:
    """Every request answered, every answer as MLflow's, every answered row logged."""
    return all(
        not s["errors"] and not s.get("mismatched", {}).get("not_ties") for s in sessions
    ) and all(c["logged"] == c["answered"] for c in logged.values())


def run_soak(args: argparse.Namespace) -> None:
    """``--soak N``: N requests to ``shipyard serve``; RSS after the warm-up and at the end."""
    started, load_before = _header()
    warmup = args.soak // 10
    with tempfile.TemporaryDirectory(prefix="bench-serving-soak-") as tmp:
        store = Path(tmp) / "shipyard"
        store.mkdir()
        sizes_flag = ["--quick"] if args.quick else []
        result = run_worker(
            Side("Shipyard", Path(sys.executable), BYTECODE),
            SCRIPT,
            ["--worker", "shipyard", "--store", str(store), *sizes_flag],
            env={"SHIPYARD_HOME": str(store)},
            cwd=store,
            timeout=WORKER_TIMEOUT,
        )
        contender = shipyard_contender(store, "auto")
        port = free_port(HOST)
        base = f"http://{HOST}:{port}"
        with Server(
            contender.command(port, args.workers, "soak"),
            health_url=base + contender.ready_path,
            log_path=Path(tmp) / "server.log",
            env=dict(contender.env),
            cwd=store,
            timeout=STARTUP_TIMEOUT,
            quiet_timeout=QUIET_TIMEOUT,
        ) as server:
            assert server.process is not None
            runtime = _ready_runtime(base)
            print(
                f"soak: {args.soak:,} requests from 16 clients to shipyard serve (runtime "
                f"{runtime}, {args.workers} worker(s)); RSS after the first {warmup:,} and at the end",
                flush=True,
            )
            args_ = ["--worker", "soak", "--port", str(port), "--pgid", str(server.process.pid)]
            args_ += ["--total", str(args.soak), "--warmup", str(warmup)]
            soaked = run_worker(
                Side("load", Path(sys.executable)),
                SCRIPT,
                [*args_, "--quick"] if args.quick else args_,
                timeout=SOAK_LIMIT_S + 300,
            )
        counted = run_worker(
            Side("count", Path(sys.executable)),
            SCRIPT,
            ["--worker", "count", "--deployments", "soak"],
            env={"SHIPYARD_HOME": str(store)},
            timeout=WORKER_TIMEOUT,
        )
    rss = soaked["rss"]
    after_warmup = next(s for s in rss if s["requests"] >= warmup)
    end = rss[-1]
    growth = end["bytes"] / after_warmup["bytes"] - 1
    for sample in rss:
        print(
            f"  after {sample['requests']:>9,} requests ({sample['seconds']:6.1f} s): "
            f"RSS {sample['bytes'] / 2**20:7.1f} MiB",
            flush=True,
        )
    conc = soaked["conc"]
    met = growth < 0.10 and conc["requests"] >= args.soak
    print(
        f"soak: {conc['requests']:,} answered at {conc['rps']:,.0f} req/s (p99 "
        f"{conc['p99_ms']:.1f} ms), {soaked['errors']} failed, {counted['soak']:,} rows logged; "
        f"RSS {after_warmup['bytes'] / 2**20:.1f} -> {end['bytes'] / 2**20:.1f} MiB: "
        f"{growth:+.1%} (goal < +10%: {'met' if met else 'MISSED'})",
        flush=True,
    )
    elapsed = time.perf_counter() - started
    path = write_json(
        "serving-soak",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "shipyard": result["version"],
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": {
                "start": [round(v, 2) for v in load_before],
                "end": [round(v, 2) for v in os.getloadavg()],
            },
            "requests": args.soak,
            "warmup_requests": warmup,
            "workers": args.workers,
            "runtime": runtime,
            "answered": conc["requests"],
            "logged_rows": counted["soak"],
            "errors": soaked["errors"],
            "error_samples": soaked["error_samples"],
            "rps": round(conc["rps"], 1),
            "p99_ms": round(conc["p99_ms"], 2),
            "rss": rss,
            "rss_growth": round(growth, 4),
            "goal": "< 10% after warm-up",
            "met": met,
            "wall_s": round(elapsed, 1),
        },
    )
    print(f"results written to {path}; the soak took {elapsed:.0f} s")
    if soaked["errors"] or counted["soak"] != conc["requests"]:
        sys.exit(1)


def _load(args: argparse.Namespace) -> Load:
    load = QUICK if args.quick else FULL
    return load if args.seconds is None else Load(**{**asdict(load), "seconds": args.seconds})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the workers' options are hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of every server (default 1)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        help="length of each 16-client measurement in seconds (default 5, quick 1.5)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--soak",
        type=int,
        metavar="N",
        default=0,
        help="instead of the comparison: N requests to shipyard serve, RSS growth (e.g. 200000)",
    )
    hidden = argparse.SUPPRESS
    parser.add_argument(
        "--worker", choices=["mlflow", "shipyard", "load", "soak", "count"], help=hidden
    )
    parser.add_argument("--store", type=Path, help=hidden)
    parser.add_argument("--port", type=int, help=hidden)
    parser.add_argument("--side", help=hidden)
    parser.add_argument("--phases", default="batch,seq,conc", help=hidden)
    parser.add_argument("--pgid", type=int, help=hidden)
    parser.add_argument("--total", type=int, help=hidden)
    parser.add_argument("--warmup", type=int, help=hidden)
    parser.add_argument("--deployments", default="", help=hidden)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be positive")
    if args.soak and args.soak < 100:
        parser.error("--soak needs at least 100 requests (the first tenth is the warm-up)")
    return args


def run_worker_job(args: argparse.Namespace) -> dict:
    """The hidden worker jobs: prepare a store, generate load, soak, count logged rows."""
    sizes = QUICK_MODEL if args.quick else MODEL
    load = _load(args)
    if args.worker in ("mlflow", "shipyard"):
        return prepare(args.worker, args.store, sizes)
    if args.worker == "load":
        phases = args.phases.split(",")
        return asyncio.run(measure(args.side, args.port, sizes.features, load, phases, args.pgid))
    if args.worker == "soak":
        return asyncio.run(
            soak(args.port, sizes.features, load, args.total, args.warmup, args.pgid)
        )
    return count_logged([d for d in args.deployments.split(",") if d])


def main(argv: list[str] | None = None) -> None:
    """Entry point: the comparison by default, the soak with ``--soak``, a worker with ``--worker``."""
    args = parse_args(argv)
    if args.worker:
        emit(run_worker_job(args))
    elif args.soak:
        run_soak(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
