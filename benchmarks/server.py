"""Shipyard's server against `mlflow server`, both on SQLite, same client load, same run.

Each round starts one server on loopback with a fresh store (``--workers N``
for both), waits for it to answer, and runs one load-generator process
against its REST API: 8 clients, each a thread with its own ``httpx.Client``
(one keep-alive connection), released together by a barrier.

  (a) each client logs 1,000 metric points into a run of its own, in
      batches of 100 (MLflow ``POST /api/2.0/mlflow/runs/log-batch``,
      Shipyard ``POST /api/v1/runs/{id}/batch``)                      metrics/s
  (b) each client creates 50 runs in one experiment (MLflow
      ``POST /api/2.0/mlflow/runs/create``, Shipyard ``POST /api/v1/runs``)
                                                                         runs/s

Request bodies are encoded before the clock starts; runs of (a) and the
experiment of (b) are made untimed; an untimed warm-up load (each client: one
run, one batch) comes first on every server. Afterwards every metric and run
is counted back through the same API, and every failed request is reported.
MLflow and Shipyard alternate, one unmeasured warm-up round comes first, the
medians of ``--repeat`` rounds are compared.

Usage: ``.venv/bin/python benchmarks/server.py [--repeat N] [--workers 1,2] [--quick]``.
MLflow runs from ``benchmarks/.envs/mlflow-<version>/`` (the environment of
``tracking.py``, made on first use). Results: printed, and written to
``benchmarks/results/server.json``.

The same file is the load generator: ``--worker mlflow|shipyard --base URL``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _harness import (
    BenchError,
    Case,
    Outcome,
    Server,
    Side,
    compare_rounds,
    emit,
    free_port,
    print_outcome,
    print_table,
    run_worker,
    write_json,
)
from tracking import mlflow_python

SCRIPT = Path(__file__).resolve()
HOST = "127.0.0.1"
EXPERIMENT = "bench"
STARTUP_TIMEOUT = 90
#: After /health answers, wait (at most this long) until the server's processes
#: are idle: MLflow starts its job runner's 7 huey consumers only then.
QUIET_TIMEOUT = 60
LOAD_TIMEOUT = 600
REQUEST_TIMEOUT = 60
MAX_PAGES = 1_000
#: Error lines kept per kind (request errors, server tracebacks).
KEEP_ERRORS = 5

CASES = [
    Case("a", "8 clients x log_batch of 100", "metrics/s", True, min_ratio=5),
    Case("b", "8 clients creating runs", "runs/s", True, min_ratio=5),
]


@dataclass(frozen=True)
class Sizes:
    """How much load each client sends."""

    clients: int
    metrics_per_client: int
    batch_size: int
    runs_per_client: int
    metric_keys: int


FULL = Sizes(
    clients=8, metrics_per_client=1_000, batch_size=100, runs_per_client=50, metric_keys=10
)
QUICK = Sizes(clients=8, metrics_per_client=200, batch_size=100, runs_per_client=5, metric_keys=10)


# ============================================================ load-generator side
# Runs under the project's python (httpx); imports it only here.


def _now_ms() -> int:
    return int(time.time() * 1000)


def _points(sizes: Sizes) -> list[tuple[str, float, int]]:
    """(key, value, step) of one client's points: each key gets every step once."""
    n, k = sizes.metrics_per_client, sizes.metric_keys
    return [(f"m{j % k}", (j % 997) / 997, j // k) for j in range(n)]


class Api:
    """One server's REST API: the same logical calls, each side's routes and bodies.

    Every call goes through :meth:`call`, which records a failure (status and
    body, or exception) in ``errors`` instead of raising, and returns the
    decoded JSON or None.
    """

    def __init__(self, errors: list[str], lock: threading.Lock) -> None:
        self.errors, self.lock = errors, lock

    def call(self, http: Any, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = http.request(method, path, **kwargs)
        except Exception as exc:  # every failure is counted and reported, none raised
            self._fail(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        if not 200 <= response.status_code < 300:
            self._fail(f"{method} {path} -> HTTP {response.status_code}: {response.text[:1000]}")
            return None
        return response.json()

    def post_raw(self, http: Any, path: str, body: bytes) -> Any:
        """POST an already-encoded JSON body."""
        headers = {"Content-Type": "application/json"}
        return self.call(http, "POST", path, content=body, headers=headers)

    def _fail(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    # each side fills these in
    def version(self, http: Any) -> str: ...
    def create_experiment(self, http: Any, name: str) -> str | None: ...
    def create_run_request(self, experiment: str) -> tuple[str, bytes]: ...
    def run_id(self, created: Any) -> str: ...
    def batch_request(
        self, run_id: str, points: list[tuple[str, float, int]]
    ) -> tuple[str, bytes]: ...
    def count_points(self, http: Any, run_id: str, key: str) -> int: ...
    def count_runs(self, http: Any, experiment: str) -> int: ...


class MlflowApi(Api):
    """``mlflow server``'s REST API (``/api/2.0/mlflow``)."""

    base = "/api/2.0/mlflow"

    def version(self, http: Any) -> str:
        response = http.get("/version")
        return response.text.strip() if response.status_code == 200 else "?"

    def create_experiment(self, http: Any, name: str) -> str | None:
        made = self.call(http, "POST", f"{self.base}/experiments/create", json={"name": name})
        return None if made is None else made["experiment_id"]

    def create_run_request(self, experiment: str) -> tuple[str, bytes]:
        # MlflowClient.create_run sends the start time; the server names the run.
        body = {"experiment_id": experiment, "start_time": _now_ms()}
        return f"{self.base}/runs/create", json.dumps(body).encode()

    def run_id(self, created: Any) -> str:
        return created["run"]["info"]["run_id"]

    def batch_request(self, run_id: str, points: list[tuple[str, float, int]]) -> tuple[str, bytes]:
        ts = _now_ms()
        metrics = [{"key": k, "value": v, "timestamp": ts, "step": s} for k, v, s in points]
        return f"{self.base}/runs/log-batch", json.dumps(
            {"run_id": run_id, "metrics": metrics}
        ).encode()

    def count_points(self, http: Any, run_id: str, key: str) -> int:
        return self._paged(
            http,
            "GET",
            f"{self.base}/metrics/get-history",
            {"run_id": run_id, "metric_key": key, "max_results": 1000},
            "metrics",
        )

    def count_runs(self, http: Any, experiment: str) -> int:
        return self._paged(
            http,
            "POST",
            f"{self.base}/runs/search",
            {"experiment_ids": [experiment], "max_results": 1000},
            "runs",
        )

    def _paged(self, http: Any, method: str, path: str, query: dict, field: str) -> int:
        total, token = 0, None
        for _ in range(MAX_PAGES):
            query = {**query, **({"page_token": token} if token else {})}
            where = {"params": query} if method == "GET" else {"json": query}
            found = self.call(http, method, path, **where)
            if found is None:
                break
            total += len(found.get(field, []))
            token = found.get("next_page_token")
            if not token:
                break
        return total


class ShipyardApi(Api):
    """``shipyard server``'s REST API (``/api/v1``)."""

    base = "/api/v1"

    def version(self, http: Any) -> str:
        response = http.get("/health")
        return response.json().get("version", "?") if response.status_code == 200 else "?"

    def create_experiment(self, http: Any, name: str) -> str | None:
        made = self.call(http, "POST", f"{self.base}/experiments", json={"name": name})
        return None if made is None else made["experiment_id"]

    def create_run_request(self, experiment: str) -> tuple[str, bytes]:
        return f"{self.base}/runs", json.dumps({"experiment": experiment}).encode()

    def run_id(self, created: Any) -> str:
        return created["run_id"]

    def batch_request(self, run_id: str, points: list[tuple[str, float, int]]) -> tuple[str, bytes]:
        ts = _now_ms()
        metrics = [{"key": k, "value": v, "step": s, "timestamp": ts} for k, v, s in points]
        return f"{self.base}/runs/{run_id}/batch", json.dumps({"metrics": metrics}).encode()

    def count_points(self, http: Any, run_id: str, key: str) -> int:
        return self._paged(
            http, f"{self.base}/runs/{run_id}/metric-history", {"key": key, "max_results": 1000}
        )

    def count_runs(self, http: Any, experiment: str) -> int:
        return self._paged(
            http, f"{self.base}/runs", {"experiment": experiment, "max_results": 1000}
        )

    def _paged(self, http: Any, path: str, query: dict) -> int:
        total, token = 0, None
        for _ in range(MAX_PAGES):
            params = {**query, **({"page_token": token} if token else {})}
            found = self.call(http, "GET", path, params=params)
            if found is None:
                break
            total += len(found["items"])
            token = found.get("next_page_token")
            if not token:
                break
        return total


APIS: dict[str, type[Api]] = {"mlflow": MlflowApi, "shipyard": ShipyardApi}


def _concurrently(clients: list[Any], work: Callable[[int, Any], None]) -> tuple[float, float]:
    """Run ``work(i, http)`` on every client at once; (wall s, this process's CPU s).

    A barrier releases all threads together; the clock runs from the release
    to the last thread's end.
    """
    barrier = threading.Barrier(len(clients) + 1)

    def one(i: int) -> None:
        barrier.wait(timeout=60)
        work(i, clients[i])

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        futures = [pool.submit(one, i) for i in range(len(clients))]
        barrier.wait(timeout=60)
        started, cpu = time.perf_counter(), time.process_time()
        for future in futures:
            future.result(timeout=LOAD_TIMEOUT)
        return time.perf_counter() - started, time.process_time() - cpu


def load(side: str, base_url: str, sizes: Sizes) -> dict:
    """Warm-up, then (a) and (b) against ``base_url``, then count everything back."""
    import httpx

    errors: list[str] = []
    api = APIS[side](errors, threading.Lock())
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    clients = [httpx.Client(base_url=base_url, timeout=timeout) for _ in range(sizes.clients)]
    try:
        admin = clients[0]
        version = api.version(admin)
        points = _points(sizes)

        # Untimed warm-up: every client (connection) creates a run and logs one batch.
        warm = api.create_experiment(admin, "warm-up") or "0"

        def warm_up(i: int, http: Any) -> None:
            created = api.post_raw(http, *api.create_run_request(warm))
            if created is not None:
                api.post_raw(
                    http, *api.batch_request(api.run_id(created), points[: sizes.batch_size])
                )

        _concurrently(clients, warm_up)
        warm_errors = len(errors)

        # (a) one run per client, made untimed; bodies encoded before the clock starts.
        exp_a = api.create_experiment(admin, f"{EXPERIMENT}-a") or "0"
        runs_a = []
        for http in clients:
            created = api.post_raw(http, *api.create_run_request(exp_a))
            runs_a.append(api.run_id(created) if created is not None else "missing")
        bodies = [
            [
                api.batch_request(run, points[i : i + sizes.batch_size])
                for i in range(0, len(points), sizes.batch_size)
            ]
            for run in runs_a
        ]

        def log_batches(i: int, http: Any) -> None:
            for path, body in bodies[i]:
                api.post_raw(http, path, body)

        before = len(errors)
        wall_a, cpu_a = _concurrently(clients, log_batches)
        errors_a = len(errors) - before

        # (b) runs created in an experiment made untimed.
        exp_b = api.create_experiment(admin, f"{EXPERIMENT}-b") or "0"
        made = [0] * sizes.clients

        def create_runs(i: int, http: Any) -> None:
            for _ in range(sizes.runs_per_client):
                if api.post_raw(http, *api.create_run_request(exp_b)) is not None:
                    made[i] += 1

        before = len(errors)
        wall_b, cpu_b = _concurrently(clients, create_runs)
        errors_b = len(errors) - before

        # Count everything back through the API.
        before = len(errors)
        keys = sorted({k for k, _, _ in points})
        stored_points = sum(api.count_points(admin, run, key) for run in runs_a for key in keys)
        stored_runs = api.count_runs(admin, exp_b)
        errors_verify = len(errors) - before
    finally:
        for http in clients:
            http.close()

    metrics_sent = sizes.clients * sizes.metrics_per_client
    runs_sent = sizes.clients * sizes.runs_per_client
    return {
        "version": version,
        "a": metrics_sent / wall_a,
        "b": runs_sent / wall_b,
        "wall_s": {"a": wall_a, "b": wall_b},
        "client_cpu_s": {"a": cpu_a, "b": cpu_b},
        "errors": {"warm_up": warm_errors, "a": errors_a, "b": errors_b, "verify": errors_verify},
        "error_samples": errors[:KEEP_ERRORS],
        "expected": {"metrics": metrics_sent, "runs": runs_sent},
        "stored": {"metrics": stored_points, "runs": stored_runs, "runs_acknowledged": sum(made)},
    }


# ==================================================================== parent side


@dataclass(frozen=True)
class Contender:
    """How to start one server with a fresh store, and its load generator's side."""

    key: str
    label: str
    command: Callable[[Path, int, int], list[str]]
    env: Callable[[Path], dict[str, str]]
    health_path: str

    def load_side(self) -> Side:
        return Side(self.label, Path(sys.executable))


def mlflow_contender(python: Path) -> Contender:
    """``mlflow server`` from its venv: SQLite backend, local artifact root."""
    bin_dir = python.parent

    def command(store: Path, port: int, workers: int) -> list[str]:
        return [
            str(bin_dir / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{store}/mlflow.db",
            "--default-artifact-root",
            str(store / "artifacts"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]

    def env(store: Path) -> dict[str, str]:
        # It starts uvicorn by name: the venv's bin/ goes first on PATH.
        return {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "VIRTUAL_ENV": str(bin_dir.parent),
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }

    return Contender("mlflow", "MLflow", command, env, "/health")


def shipyard_contender() -> Contender:
    """``shipyard server`` from the project's venv, SQLite under a fresh SHIPYARD_HOME."""
    shipyard = Path(sys.executable).parent / "shipyard"

    def command(store: Path, port: int, workers: int) -> list[str]:
        return [
            str(shipyard),
            "server",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]

    def env(store: Path) -> dict[str, str]:
        return {"SHIPYARD_HOME": str(store), "SHIPYARD_URI": f"sqlite:///{store}/shipyard.db"}

    return Contender("shipyard", "Shipyard", command, env, "/health")


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):$", re.MULTILINE)
_HTTP_5XX = re.compile(r'" 5\d\d\b')


def server_problems(log: str) -> dict:
    """Tracebacks and 5xx access-log lines in a server's log."""
    tracebacks = []
    for match in list(_TRACEBACK.finditer(log))[:KEEP_ERRORS]:
        # From a few lines before the traceback (the logger's line) to 3,000 characters on.
        start = log.rfind("\n", 0, max(0, match.start() - 1))
        tracebacks.append(log[start + 1 : match.start() + 3000].rstrip())
    return {
        "tracebacks": len(_TRACEBACK.findall(log)),
        "traceback_samples": tracebacks,
        "http_5xx": len(_HTTP_5XX.findall(log)),
    }


class Bench:
    """Runs server sessions and keeps what each reported beside its throughput."""

    def __init__(self, sizes: Sizes, quick: bool) -> None:
        self.sizes, self.quick = sizes, quick
        self.versions: dict[str, str] = {}
        self.sessions: list[dict] = []

    def session(self, contender: Contender, workers: int) -> dict[str, float]:
        """Start ``contender``'s server on a fresh store, load it, stop it; {case: value}."""
        load_1min = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix=f"bench-server-{contender.key}-") as tmp:
            store = Path(tmp)
            port = free_port(HOST)
            base = f"http://{HOST}:{port}"
            server = Server(
                contender.command(store, port, workers),
                health_url=base + contender.health_path,
                log_path=store / "server.log",
                env=contender.env(store),
                cwd=store,
                timeout=STARTUP_TIMEOUT,
                quiet_timeout=QUIET_TIMEOUT,
            )
            with server:
                args = ["--worker", contender.key, "--base", base]
                try:
                    result = run_worker(
                        contender.load_side(),
                        SCRIPT,
                        [*args, "--quick"] if self.quick else args,
                        timeout=LOAD_TIMEOUT,
                    )
                except BenchError as exc:
                    tail = server.log_text()[-4000:]
                    raise BenchError(
                        f"{exc}\n--- {contender.label} server log ---\n{tail}"
                    ) from exc
            problems = server_problems(server.log_text())
        self.versions[contender.key] = result["version"]
        record = {
            "side": contender.key,
            "workers": workers,
            "load_1min": round(load_1min, 2),
            "startup_s": round(server.startup_s, 2),
            "settle_s": round(server.settle_s, 2),
            "settled": server.settled,
            "a": round(result["a"], 1),
            "b": round(result["b"], 2),
            "wall_s": {k: round(v, 3) for k, v in result["wall_s"].items()},
            "client_cpu_s": {k: round(v, 3) for k, v in result["client_cpu_s"].items()},
            "errors": result["errors"],
            "stored": result["stored"],
            "expected": result["expected"],
            "error_samples": result["error_samples"],
            "server_log": problems,
        }
        self.sessions.append(record)
        self._report(contender, record)
        return {"a": result["a"], "b": result["b"]}

    def _report(self, contender: Contender, record: dict) -> None:
        """One line per session; loud lines for errors, lost writes and tracebacks."""
        errors = sum(record["errors"].values())
        print(
            f"  {contender.label:8} workers={record['workers']} load={record['load_1min']:.2f} "
            f"start {record['startup_s']:.1f} s + settle {record['settle_s']:.1f} s"
            f"{'' if record['settled'] else ' (NOT QUIET)'}: (a) {record['a']:,.0f} metrics/s, "
            f"(b) {record['b']:,.1f} runs/s; errors {errors}; client CPU "
            f"{record['client_cpu_s']['a']:.2f}/{record['wall_s']['a']:.2f} s (a), "
            f"{record['client_cpu_s']['b']:.2f}/{record['wall_s']['b']:.2f} s (b)",
            flush=True,
        )
        stored, expected = record["stored"], record["expected"]
        if stored["metrics"] != expected["metrics"] or stored["runs"] != expected["runs"]:
            print(
                f"  !! {contender.label}: stored {stored['metrics']}/{expected['metrics']} "
                f"metrics and {stored['runs']}/{expected['runs']} runs",
                flush=True,
            )
        for sample in record["error_samples"]:
            print(f"  !! {contender.label} request error: {sample}", flush=True)
        log = record["server_log"]
        if log["tracebacks"] or log["http_5xx"]:
            print(
                f"  !! {contender.label} server log: {log['tracebacks']} tracebacks, "
                f"{log['http_5xx']} 5xx responses; first:\n{(log['traceback_samples'] or [''])[0]}",
                flush=True,
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the load-generator options are hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--workers", default="1", help="comma-separated worker counts, each compared (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--worker", choices=sorted(APIS), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        parser.error("--workers takes comma-separated integers, e.g. 1,2")
    if not args.workers or min(args.workers) < 1:
        parser.error("--workers needs at least one count >= 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _verified(sessions: list[dict]) -> bool:
    """Whether every session stored all it was sent, with no error anywhere."""
    return all(
        s["stored"]["metrics"] == s["expected"]["metrics"]
        and s["stored"]["runs"] == s["expected"]["runs"]
        and not sum(s["errors"].values())
        and not s["server_log"]["tracebacks"]
        and not s["server_log"]["http_5xx"]
        for s in sessions
    )


def run_parent(args: argparse.Namespace) -> None:
    """Run the benchmark: sessions per worker count, ratios, table, JSON."""
    # Stop the servers on SIGTERM too, and on SIGINT even when started in the background.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started, load_before = time.perf_counter(), os.getloadavg()
    print(
        f"load average at start: {' '.join(f'{v:.2f}' for v in load_before)} ({os.cpu_count()} CPUs)"
    )
    python, requirement = mlflow_python()
    sizes = QUICK if args.quick else FULL
    mlflow, shipyard = mlflow_contender(python), shipyard_contender()
    bench = Bench(sizes, args.quick)
    per_workers: dict[str, dict] = {}
    all_outcomes: list[tuple[int, Outcome]] = []
    for workers in args.workers:
        print(
            f"--- {workers} worker(s) each: 1 warm-up round, then {args.repeat} measured",
            flush=True,
        )
        first = len(bench.sessions)
        outcomes = compare_rounds(
            CASES,
            lambda: bench.session(mlflow, workers),  # noqa: B023 - called before the loop moves on
            lambda: bench.session(shipyard, workers),  # noqa: B023
            repeat=args.repeat,
        )
        for outcome in outcomes:
            print_outcome(outcome, "MLflow")
        sessions = bench.sessions[first:]
        per_workers[str(workers)] = {
            "cases": {o.case.key: o.as_dict() for o in outcomes},
            "verified": _verified(sessions),
        }
        all_outcomes += [(workers, o) for o in outcomes]
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    title = f"Shipyard server vs mlflow server {bench.versions.get('mlflow', requirement)}"
    for workers in args.workers:
        print_table(
            [o for w, o in all_outcomes if w == workers],
            "MLflow",
            f"{title}, {workers} worker(s) each, {sizes.clients} clients (median of {args.repeat})",
        )
    verified = _verified(bench.sessions)
    print(
        "every metric and run was stored, no request failed, no server traceback"
        if verified
        else "!! SOME REQUESTS FAILED, WRITES WENT MISSING OR A SERVER LOGGED TRACEBACKS: see above"
    )
    path = write_json(
        "server",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mlflow": bench.versions.get("mlflow", requirement),
            "shipyard": bench.versions.get("shipyard"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": {
                "start": [round(v, 2) for v in load_before],
                "end": [round(v, 2) for v in load_after],
            },
            "repeat": args.repeat,
            "sizes": asdict(sizes),
            "workers": per_workers,
            "verified": verified,
            "sessions": bench.sessions,
            "wall_s": round(elapsed, 1),
        },
    )
    print(f"results written to {path}; whole benchmark took {elapsed:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the parent by default, a load generator with ``--worker``."""
    args = parse_args(argv)
    if args.worker:
        emit(load(args.worker, args.base, QUICK if args.quick else FULL))
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
