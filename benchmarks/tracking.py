"""Shipyard experiment tracking against MLflow tracking (SQLite store), same work, same run.

Cases (each side in a fresh subprocess against a fresh store, alternated, one
warm-up round, medians of ``--repeat`` rounds):

  (a) 2,000 fluent ``log_metric`` calls in one run                  points/s
  (b) 100,000 metric points through ``log_batch``, 1,000 a batch    points/s
  (c) 200 fluent runs with 5 params and 5 metrics each              runs/s
  (d) ``search_runs`` over 10,000 runs, ``metrics.auc > 0.9`` (about half
      match), first page of 100: median ms of 20 queries after warm-up.
      Each side's 10,000 runs are populated once, timed separately.

Usage: ``.venv/bin/python benchmarks/tracking.py [--repeat N] [--cases a,b,c,d] [--quick]``.
MLflow runs from ``benchmarks/.envs/mlflow-<version>/``, made on first use.
Results: printed, and written to ``benchmarks/results/tracking.json``.

The same file is the worker: ``--worker mlflow|shipyard --job ... --store DIR``.
Only the standard library and ``_harness`` are imported at module level, so the
worker also runs under the MLflow environment's python.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _harness import (
    BenchError,
    Case,
    Outcome,
    Side,
    Stopwatch,
    compare,
    emit,
    ensure_venv,
    print_outcome,
    print_table,
    run_worker,
    write_json,
)

SCRIPT = Path(__file__).resolve()
MLFLOW_PIN = "3.17.2"
EXPERIMENT = "bench"
SEARCH_FILTER = "metrics.auc > 0.9"
PAGE_SIZE = 100
WORKER_TIMEOUT = 600
POPULATE_TIMEOUT = 1800

CASES = {
    "a": Case("a", "fluent log_metric, one run", "points/s", True, min_ratio=100),
    "b": Case("b", "log_batch, 1,000 a batch", "points/s", True, min_ratio=20),
    "c": Case("c", "fluent runs, 5 params + 5 metrics", "runs/s", True, min_ratio=10),
    "d": Case(
        "d",
        f"search_runs {SEARCH_FILTER}, first {PAGE_SIZE}",
        "ms",
        False,
        min_ratio=5,
        max_value=50,
    ),
}


@dataclass(frozen=True)
class Sizes:
    """How much work each case does."""

    log_metric_points: int
    batch_points: int
    batch_size: int
    runs: int
    search_runs: int
    queries: int
    query_warmup: int


FULL = Sizes(2_000, 100_000, 1_000, 200, 10_000, 20, 3)
QUICK = Sizes(200, 10_000, 1_000, 20, 500, 5, 1)


# ================================================================== worker side
# Each job prepares its store untimed, times only the work, and emits JSON.


def _batch_points(sizes: Sizes) -> list[list[tuple[str, float, int]]]:
    """(key, value, step) points for case (b), already cut into batches."""
    keys = [f"m{k}" for k in range(10)]
    points = [(keys[j % 10], (j % 997) / 997, j // 10) for j in range(sizes.batch_points)]
    return [points[i : i + sizes.batch_size] for i in range(0, len(points), sizes.batch_size)]


def _search_rows(count: int) -> list[tuple[dict[str, str], dict[str, float]]]:
    """(params, metrics) of the runs searched in case (d); auc is uniform on [0.8, 1)."""
    rng = random.Random(42)
    return [
        (
            {"lr": f"{rng.choice([0.1, 0.01, 0.001])}", "depth": str(rng.randint(2, 12))},
            {"auc": rng.uniform(0.8, 1.0), "loss": rng.random(), "accuracy": rng.random()},
        )
        for _ in range(count)
    ]


def _five() -> tuple[dict[str, str], dict[str, float]]:
    """The 5 params and 5 metrics of each run in case (c)."""
    return {f"p{k}": str(k) for k in range(5)}, {f"m{k}": k / 10 for k in range(5)}


def _now_ms() -> int:
    """The current time in ms since the epoch."""
    return int(time.time() * 1000)


def _median_query_ms(search: Callable[[], int], sizes: Sizes) -> dict:
    """Warm up, then time ``search`` ``sizes.queries`` times; median ms and page size."""
    for _ in range(sizes.query_warmup):
        search()
    times = []
    for _ in range(sizes.queries):
        with Stopwatch() as watch:
            found = search()
        times.append(watch.seconds * 1000)
    if found != PAGE_SIZE:
        raise BenchError(f"expected a first page of {PAGE_SIZE} runs, got {found}")
    return {"value": statistics.median(times), "page": found}


# ------------------------------------------------------------------ MLflow


def _mlflow_fluent(store: Path) -> Any:
    """Import mlflow, point it at a fresh SQLite file, select the experiment."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store}/mlflow.db")
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def _mlflow_client(store: Path, *, create: bool) -> tuple[Any, str]:
    """An ``MlflowClient`` on ``store`` and the id of the experiment (created if asked)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store}/mlflow.db")
    if create:
        exp_id = client.create_experiment(EXPERIMENT, artifact_location=str(store / "artifacts"))
    else:
        exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    return client, exp_id


def mlflow_a(store: Path, sizes: Sizes) -> dict:
    """(a) fluent log_metric calls in one run."""
    mlflow = _mlflow_fluent(store)
    with Stopwatch() as watch, mlflow.start_run():
        for i in range(sizes.log_metric_points):
            mlflow.log_metric("loss", 1 / (i + 1), step=i)
    return {"value": sizes.log_metric_points / watch.seconds, "version": mlflow.__version__}


def mlflow_b(store: Path, sizes: Sizes) -> dict:
    """(b) log_batch of metric points into one run."""
    import mlflow
    from mlflow.entities import Metric

    client, exp_id = _mlflow_client(store, create=True)
    batches, ts = _batch_points(sizes), _now_ms()
    with Stopwatch() as watch:
        run_id = client.create_run(exp_id).info.run_id
        for batch in batches:
            metrics = [Metric(key=k, value=v, timestamp=ts, step=s) for k, v, s in batch]
            client.log_batch(run_id, metrics=metrics)
        client.set_terminated(run_id)
    return {"value": sizes.batch_points / watch.seconds, "version": mlflow.__version__}


def mlflow_c(store: Path, sizes: Sizes) -> dict:
    """(c) fluent runs with 5 params and 5 metrics each."""
    mlflow = _mlflow_fluent(store)
    params, metrics = _five()
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            with mlflow.start_run():
                mlflow.log_params(params)
                mlflow.log_metrics(metrics, step=0)
    return {"value": sizes.runs / watch.seconds, "version": mlflow.__version__}


def mlflow_populate(store: Path, sizes: Sizes) -> dict:
    """(d, untimed case) create the searched runs as fast as MLflow allows."""
    import mlflow
    from mlflow.entities import Metric, Param

    client, exp_id = _mlflow_client(store, create=True)
    rows, ts = _search_rows(sizes.search_runs), _now_ms()
    with Stopwatch() as watch:
        for i, (params, metrics) in enumerate(rows):
            run_id = client.create_run(exp_id, run_name=f"r{i}").info.run_id
            client.log_batch(
                run_id,
                metrics=[Metric(key=k, value=v, timestamp=ts, step=0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )
    return {"value": len(rows) / watch.seconds, "version": mlflow.__version__}


def mlflow_d(store: Path, sizes: Sizes) -> dict:
    """(d) search_runs over the populated store, first page."""
    import mlflow

    client, exp_id = _mlflow_client(store, create=False)

    def search() -> int:
        return len(client.search_runs([exp_id], filter_string=SEARCH_FILTER, max_results=PAGE_SIZE))

    return {**_median_query_ms(search, sizes), "version": mlflow.__version__}


# ---------------------------------------------------------------- Shipyard
# The store comes from SHIPYARD_HOME / SHIPYARD_URI, set by the parent.


def _shipyard_with_experiment() -> tuple[Any, Any]:
    """Import shipyard and create the experiment in the fresh store (untimed)."""
    import shipyard as sy

    client = sy.Client()
    client.create_experiment(EXPERIMENT)
    return sy, client


def shipyard_a(store: Path, sizes: Sizes) -> dict:
    """(a) fluent log_metric calls in one run (buffered: the flush is timed too)."""
    sy, _ = _shipyard_with_experiment()
    with Stopwatch() as watch:
        with sy.start_run(experiment=EXPERIMENT):
            for i in range(sizes.log_metric_points):
                sy.log_metric("loss", 1 / (i + 1), step=i)
        sy.flush()
    return {"value": sizes.log_metric_points / watch.seconds, "version": sy.__version__}


def shipyard_b(store: Path, sizes: Sizes) -> dict:
    """(b) log_batch of metric points into one run."""
    sy, client = _shipyard_with_experiment()
    batches, ts = _batch_points(sizes), _now_ms()
    with Stopwatch() as watch:
        run_id = client.create_run(EXPERIMENT).run_id
        for batch in batches:
            client.log_batch(run_id, metrics=[sy.Metric(k, v, s, ts) for k, v, s in batch])
        client.end_run(run_id)
    return {"value": sizes.batch_points / watch.seconds, "version": sy.__version__}


def shipyard_c(store: Path, sizes: Sizes) -> dict:
    """(c) fluent runs with 5 params and 5 metrics each."""
    sy, _ = _shipyard_with_experiment()
    params, metrics = _five()
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            with sy.start_run(experiment=EXPERIMENT):
                sy.log_params(params)
                sy.log_metrics(metrics, step=0)
        sy.flush()
    return {"value": sizes.runs / watch.seconds, "version": sy.__version__}


def shipyard_populate(store: Path, sizes: Sizes) -> dict:
    """(d, untimed case) create the searched runs as fast as Shipyard allows."""
    sy, client = _shipyard_with_experiment()
    rows, ts = _search_rows(sizes.search_runs), _now_ms()
    with Stopwatch() as watch:
        for i, (params, metrics) in enumerate(rows):
            run_id = client.create_run(EXPERIMENT, name=f"r{i}").run_id
            client.log_batch(
                run_id, metrics=[sy.Metric(k, v, 0, ts) for k, v in metrics.items()], params=params
            )
    return {"value": len(rows) / watch.seconds, "version": sy.__version__}


def shipyard_d(store: Path, sizes: Sizes) -> dict:
    """(d) search_runs over the populated store, first page."""
    import shipyard as sy

    client = sy.Client()

    def search() -> int:
        return len(client.search_runs(EXPERIMENT, filter=SEARCH_FILTER, max_results=PAGE_SIZE))

    return {**_median_query_ms(search, sizes), "version": sy.__version__}


JOBS: dict[str, dict[str, Callable[[Path, Sizes], dict]]] = {
    "mlflow": {
        "a": mlflow_a,
        "b": mlflow_b,
        "c": mlflow_c,
        "populate": mlflow_populate,
        "d": mlflow_d,
    },
    "shipyard": {
        "a": shipyard_a,
        "b": shipyard_b,
        "c": shipyard_c,
        "populate": shipyard_populate,
        "d": shipyard_d,
    },
}


# ================================================================== parent side


@dataclass(frozen=True)
class Contender:
    """A side plus how to point its worker at a store directory."""

    key: str
    side: Side

    def store_env(self, store: Path) -> dict[str, str]:
        """Environment that selects ``store`` (MLflow gets its URI in code instead)."""
        if self.key == "shipyard":
            return {"SHIPYARD_HOME": str(store), "SHIPYARD_URI": f"sqlite:///{store}/shipyard.db"}
        return {}

    def run(self, job: str, store: Path, quick: bool, timeout: float = WORKER_TIMEOUT) -> dict:
        """Run one worker job against ``store`` and return its result."""
        args = ["--worker", self.key, "--job", job, "--store", str(store)]
        return run_worker(
            self.side,
            SCRIPT,
            [*args, "--quick"] if quick else args,
            env=self.store_env(store),
            cwd=store,
            timeout=timeout,
        )


class Bench:
    """Runs the chosen cases for MLflow and Shipyard and collects what they report."""

    def __init__(self, mlflow: Contender, shipyard: Contender, quick: bool, repeat: int) -> None:
        self.mlflow, self.shipyard = mlflow, shipyard
        self.quick, self.repeat = quick, repeat
        self.versions: dict[str, str] = {}
        self.populate: dict[str, dict] = {}

    def _run(self, contender: Contender, job: str, store: Path, **kwargs: float) -> float:
        """Run one worker job, note the version it reports, and return its value."""
        result = contender.run(job, store, self.quick, **kwargs)
        self.versions[contender.key] = result["version"]
        return result["value"]

    def _fresh(self, contender: Contender, job: str) -> Callable[[], float]:
        """A measurement: one worker for ``job`` against a fresh temporary store."""

        def measure() -> float:
            with tempfile.TemporaryDirectory(prefix=f"bench-{contender.key}-") as tmp:
                return self._run(contender, job, Path(tmp))

        return measure

    def _on(self, contender: Contender, job: str, store: Path) -> Callable[[], float]:
        """A measurement: one worker for ``job`` against an existing ``store``."""
        return lambda: self._run(contender, job, store)

    def case(self, key: str) -> Outcome:
        """Measure case ``key`` (a, b or c) on fresh stores."""
        return compare(
            CASES[key],
            self._fresh(self.mlflow, key),
            self._fresh(self.shipyard, key),
            repeat=self.repeat,
        )

    def search_case(self) -> Outcome:
        """Populate one store per side once, then measure case (d) on them."""
        with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
            stores = {}
            for contender in (self.mlflow, self.shipyard):
                store = Path(tmp) / contender.key
                store.mkdir()
                started = time.perf_counter()
                rate = self._run(contender, "populate", store, timeout=POPULATE_TIMEOUT)
                wall = time.perf_counter() - started
                self.populate[contender.key] = {
                    "runs_per_s": round(rate, 1),
                    "wall_s": round(wall, 1),
                }
                label = contender.side.label
                print(f"(d) populated {label}: {rate:,.1f} runs/s ({wall:.0f} s)", flush=True)
                stores[contender.key] = store
            return compare(
                CASES["d"],
                self._on(self.mlflow, "d", stores["mlflow"]),
                self._on(self.shipyard, "d", stores["shipyard"]),
                repeat=self.repeat,
            )


def mlflow_python() -> tuple[Path, str]:
    """The MLflow venv's python and the requirement used: the pin, or the latest 3.x."""
    try:
        return ensure_venv(f"mlflow-{MLFLOW_PIN}", [f"mlflow=={MLFLOW_PIN}"]), MLFLOW_PIN
    except BenchError as exc:
        print(f"mlflow=={MLFLOW_PIN} is not installable ({exc}); using the latest 3.x instead")
        return ensure_venv("mlflow-3.x", ["mlflow>=3,<4"]), "latest 3.x"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the worker options are hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--worker", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from a,b,c,d")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run_parent(args: argparse.Namespace) -> None:
    """Run the benchmark: measure, print each ratio, the table, and write JSON."""
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    python, requirement = mlflow_python()
    bench = Bench(
        Contender("mlflow", Side("MLflow", python, {"MLFLOW_DISABLE_TELEMETRY": "true"})),
        Contender("shipyard", Side("Shipyard", Path(sys.executable))),
        quick=args.quick,
        repeat=args.repeat,
    )
    outcomes = []
    for key in args.cases:
        outcome = bench.search_case() if key == "d" else bench.case(key)
        print_outcome(outcome, "MLflow")
        outcomes.append(outcome)
    elapsed = time.perf_counter() - started
    title = f"Shipyard vs MLflow {bench.versions.get('mlflow', requirement)} tracking"
    print_table(outcomes, "MLflow", f"{title} (median of {args.repeat}, {elapsed:.0f} s)")
    path = write_json(
        "tracking",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mlflow": bench.versions.get("mlflow", requirement),
            "shipyard": bench.versions.get("shipyard"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min": {"start": load_before, "end": os.getloadavg()[0]},
            "repeat": args.repeat,
            "sizes": asdict(QUICK if args.quick else FULL),
            "populate": bench.populate,
            "wall_s": round(elapsed, 1),
            "cases": {o.case.key: o.as_dict() for o in outcomes},
        },
    )
    print(f"results written to {path}; whole benchmark took {elapsed:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the parent by default, a worker with ``--worker``."""
    args = parse_args(argv)
    if args.worker:
        emit(JOBS[args.worker][args.job](args.store, QUICK if args.quick else FULL))
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
