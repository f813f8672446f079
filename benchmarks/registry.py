"""Shipyard's model registry against MLflow's (SQLite store), same model, same run.

Both sides train the same 200-tree ``RandomForestClassifier`` (same
scikit-learn version, same seeded synthetic data, untimed) and then:

  (a) log + register: in a fresh process and a fresh store, log the model
      from a run, register it as ``credit`` and point the alias ``champion``
      at the new version; the time of those calls                   s
  (b) load to first prediction, fresh process: a new interpreter loads
      ``models:/credit@champion`` and predicts one row; the wall time of the
      whole subprocess, from spawn in the parent to its exit         s
  (c) the same process's time after its imports (``pandas`` and ``mlflow``
      or ``shipyard``): load by alias + predict one row             s

MLflow loads with ``mlflow.pyfunc.load_model``, what ``mlflow models serve``
does. The store of (b) and (c) is prepared once per side, untimed, by the code
of (a). Each measurement is a fresh subprocess; the sides alternate after one
warm-up round; medians of ``--repeat`` rounds.

Usage: ``.venv/bin/python benchmarks/registry.py [--repeat N] [--cases a,b,c,d] [--quick]``.
MLflow runs from ``benchmarks/.envs/mlflow-<version>-sklearn/``, made on first
use with scikit-learn and skops pinned to the versions of this interpreter.
Results: printed, and written to ``benchmarks/results/registry.json``.

The same file is the worker: ``--worker mlflow|shipyard --job log|load --store DIR``.
Only the standard library and ``_harness`` are imported at module level, so the
worker also runs under the MLflow environment's python.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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
MODEL = "credit"
ALIAS = "champion"
MODEL_URI = f"models:/{MODEL}@{ALIAS}"
# MLflow 3.17 saves scikit-learn models with skops, which refuses the tree type
# unless it is trusted (PEERS.md).
SKOPS_TRUSTED = ["sklearn.tree._tree.Tree"]
ROW_FILE = "row.json"
WORKER_TIMEOUT = 600
WARMUP = 1
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true"}
# Workers may write .pyc files (an empty value turns the setting off), so the
# warm-up round leaves both sides with compiled modules, as an installed
# package has them: pip compiled MLflow's environment, but an editable
# Shipyard under PYTHONDONTWRITEBYTECODE=1 would compile its modules in every
# fresh process.
BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}

CASES = {
    "a": Case("a", "log + register + alias", "s", False, min_ratio=1),
    "b": Case("b", "fresh process to first prediction", "s", False, min_ratio=3),
    "c": Case("c", "load by alias + predict, after imports", "s", False, min_ratio=1),
    # The deployment path: Shipyard's ONNX export of the same version (checked against the
    # original at export) against MLflow's pyfunc load of its native model.
    "d": Case("d", "fresh process to first prediction, Shipyard via ONNX", "s", False, min_ratio=3),
}


@dataclass(frozen=True)
class Sizes:
    """The synthetic data set and the forest."""

    rows: int
    features: int
    trees: int
    seed: int = 7


FULL = Sizes(rows=2_000, features=20, trees=200)
QUICK = Sizes(rows=500, features=20, trees=20)


def _now() -> float:
    """System-wide monotonic seconds: comparable between parent and worker."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# ================================================================== worker side
# ``log`` trains untimed, times only the registry calls, and leaves in the store
# the row that ``load`` predicts. ``load`` is the fresh process of (b) and (c).


def _train(sizes: Sizes) -> tuple[Any, Any]:
    """The fitted forest and the feature frame it was trained on (untimed)."""
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(
        n_samples=sizes.rows,
        n_features=sizes.features,
        n_informative=sizes.features // 2,
        random_state=sizes.seed,
    )
    X_df = pd.DataFrame(X, columns=[f"f{i}" for i in range(sizes.features)])
    model = RandomForestClassifier(n_estimators=sizes.trees, random_state=sizes.seed)
    model.fit(X_df, y)
    return model, X_df


def _fingerprint(model: Any, X_df: Any) -> str:
    """A digest of the model's probabilities on the training data: equal models, equal digest."""
    proba = model.predict_proba(X_df).round(10)
    return hashlib.sha256(proba.tobytes()).hexdigest()[:16]


def _save_row(store: Path, model: Any, X_df: Any) -> None:
    """Leave the row that ``load`` predicts, and the class it must get, in the store."""
    row = X_df.head(1)
    payload = {
        "columns": list(row.columns),
        "values": [float(v) for v in row.iloc[0]],
        "expected": int(model.predict(row)[0]),
    }
    (store / ROW_FILE).write_text(json.dumps(payload))


def _row_frame(store: Path, pd: Any) -> tuple[Any, int]:
    """The one-row frame to predict and its expected class."""
    payload = json.loads((store / ROW_FILE).read_text())
    frame = pd.DataFrame([payload["values"]], columns=payload["columns"])
    return frame, payload["expected"]


def _versions() -> dict[str, str]:
    """Versions of the libraries that shape the model and its file."""
    names = ("scikit-learn", "skops", "numpy", "pandas")
    return {name: importlib.metadata.version(name) for name in names}


# ------------------------------------------------------------------ MLflow
# The store comes from MLFLOW_TRACKING_URI (a SQLite file), set by the parent.


def mlflow_log(store: Path, sizes: Sizes) -> dict:
    """(a) start a run, log_model with registration, then set the alias."""
    model, X_df = _train(sizes)
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    client = MlflowClient()
    client.create_experiment(EXPERIMENT, artifact_location=str(store / "artifacts"))
    mlflow.set_experiment(EXPERIMENT)
    example = X_df.head()
    with Stopwatch() as total:
        with Stopwatch() as logged, mlflow.start_run():
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=MODEL,
                input_example=example,
                skops_trusted_types=SKOPS_TRUSTED,
            )
        with Stopwatch() as aliased:
            client.set_registered_model_alias(MODEL, ALIAS, info.registered_model_version)
    version = client.get_model_version_by_alias(MODEL, ALIAS).version
    if str(version) != "1":
        raise BenchError(f"MLflow: {MODEL}@{ALIAS} is version {version}, expected 1")
    _save_row(store, model, X_df)
    return {
        "value": total.seconds,
        "log_model_s": logged.seconds,
        "alias_s": aliased.seconds,
        "fingerprint": _fingerprint(model, X_df),
        "version": mlflow.__version__,
        "libraries": _versions(),
    }


def mlflow_load(store: Path, sizes: Sizes) -> dict:
    """(b, c) import, load the champion through pyfunc, predict one row."""
    started = _now()
    import mlflow
    import pandas as pd

    imported = _now()
    row, expected = _row_frame(store, pd)
    with Stopwatch() as loaded:
        model = mlflow.pyfunc.load_model(MODEL_URI)
    with Stopwatch() as predicted:
        prediction = model.predict(row)
    done = _now()
    return {
        "started_at": started,
        "imports_s": imported - started,
        "load_s": loaded.seconds,
        "predict_s": predicted.seconds,
        "done_at": done,
        "prediction": int(prediction[0]),
        "expected": expected,
        "version": mlflow.__version__,
    }


# ---------------------------------------------------------------- Shipyard
# The store comes from SHIPYARD_HOME (SQLite and blobs under it), set by the parent.


def shipyard_log(store: Path, sizes: Sizes) -> dict:
    """(a) start a run, log_model (which registers), then set the alias."""
    model, X_df = _train(sizes)
    import shipyard as sy

    sy.Client().create_experiment(EXPERIMENT)
    sy.log_model, sy.set_alias  # noqa: B018 - resolve the lazy imports untimed, like mlflow.sklearn
    example = X_df.head()
    with Stopwatch() as total:
        with Stopwatch() as logged:
            with sy.start_run(experiment=EXPERIMENT):
                mv = sy.log_model(model, name=MODEL, input_example=example)
            sy.flush()
        with Stopwatch() as aliased:
            sy.set_alias(MODEL, ALIAS, mv.version)
    if (mv.name, mv.version, mv.uri) != (MODEL, 1, f"models:/{MODEL}/1"):
        raise BenchError(f"Shipyard: logged {mv!r}, expected {MODEL} version 1")
    _save_row(store, model, X_df)
    return {
        "value": total.seconds,
        "log_model_s": logged.seconds,
        "alias_s": aliased.seconds,
        "fingerprint": _fingerprint(model, X_df),
        "version": sy.__version__,
        "libraries": _versions(),
    }


def shipyard_export(store: Path, sizes: Sizes) -> dict:
    """(d, untimed) add the ONNX format to the champion version."""
    import shipyard as sy

    sy.export_onnx(MODEL_URI)
    return {"value": 0.0}


def shipyard_load_onnx(store: Path, sizes: Sizes) -> dict:
    """(d) import, load the champion's ONNX format, predict one row."""
    return shipyard_load(store, sizes, file_format="onnx")


def shipyard_load(store: Path, sizes: Sizes, file_format: str = "native") -> dict:
    """(b, c) import, load the champion, predict one row."""
    started = _now()
    import pandas as pd

    import shipyard as sy

    imported = _now()
    row, expected = _row_frame(store, pd)
    with Stopwatch() as loaded:
        model = sy.load_model(MODEL_URI, format=file_format)
    with Stopwatch() as predicted:
        prediction = model.predict(row)
    done = _now()
    return {
        "started_at": started,
        "imports_s": imported - started,
        "load_s": loaded.seconds,
        "predict_s": predicted.seconds,
        "done_at": done,
        "prediction": int(prediction[0]),
        "expected": expected,
        "version": sy.__version__,
    }


JOBS: dict[str, dict[str, Callable[[Path, Sizes], dict]]] = {
    "mlflow": {"log": mlflow_log, "load": mlflow_load},
    "shipyard": {
        "log": shipyard_log,
        "load": shipyard_load,
        "export": shipyard_export,
        "load_onnx": shipyard_load_onnx,
    },
}


# ================================================================== parent side


@dataclass(frozen=True)
class Contender:
    """A side plus how to point its worker at a store directory."""

    key: str
    side: Side

    def store_env(self, store: Path) -> dict[str, str]:
        """Environment that selects ``store``: a SQLite file and artifacts inside it."""
        if self.key == "shipyard":
            return {"SHIPYARD_HOME": str(store)}
        return {"MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}

    def run(self, job: str, store: Path, quick: bool) -> dict:
        """Run one worker job against ``store`` and return its result."""
        args = ["--worker", self.key, "--job", job, "--store", str(store)]
        return run_worker(
            self.side,
            SCRIPT,
            [*args, "--quick"] if quick else args,
            env=self.store_env(store),
            cwd=store,
            timeout=WORKER_TIMEOUT,
        )


@dataclass
class Samples:
    """Every value a side's workers reported for one job, warm-up included."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, **values: float) -> None:
        """Append one worker's values."""
        for key, value in values.items():
            self.values.setdefault(key, []).append(value)

    def measured(self, key: str) -> list[float]:
        """The values of the measured rounds (the first ``WARMUP`` are warm-up)."""
        return self.values[key][WARMUP:]


class Bench:
    """Runs the chosen cases for MLflow and Shipyard and collects what they report."""

    def __init__(self, mlflow: Contender, shipyard: Contender, quick: bool, repeat: int) -> None:
        self.mlflow, self.shipyard = mlflow, shipyard
        self.quick, self.repeat = quick, repeat
        self.versions: dict[str, str] = {}
        self.libraries: dict[str, dict[str, str]] = {}
        self.fingerprints: dict[str, str] = {}
        self.prepare: dict[str, dict] = {}
        self.steps: dict[str, dict[str, Samples]] = {"log": {}, "load": {}}

    def _contenders(self) -> tuple[Contender, Contender]:
        return self.mlflow, self.shipyard

    def _log(self, contender: Contender, store: Path) -> dict:
        """Run the ``log`` job, check the model is the same on both sides."""
        result = contender.run("log", store, self.quick)
        self.versions[contender.key] = result["version"]
        self.libraries[contender.key] = result["libraries"]
        self.fingerprints[contender.key] = result["fingerprint"]
        if len(set(self.fingerprints.values())) > 1:
            raise BenchError(f"the two sides trained different models: {self.fingerprints}")
        return result

    def _fresh_log(self, contender: Contender) -> Callable[[], float]:
        """A measurement of (a): one ``log`` worker against a fresh temporary store."""
        samples = self.steps["log"].setdefault(contender.key, Samples())

        def measure() -> float:
            with tempfile.TemporaryDirectory(prefix=f"bench-{contender.key}-") as tmp:
                result = self._log(contender, Path(tmp))
            samples.add(log_model_s=result["log_model_s"], alias_s=result["alias_s"])
            return result["value"]

        return measure

    def _load(
        self, contender: Contender, store: Path, job: str = "load", step: str = "load"
    ) -> Callable[[], float]:
        """A measurement of (b) or (d): the wall time of one ``job`` worker, spawn to exit;
        its breakdown is kept under ``step``."""
        samples = self.steps.setdefault(step, {}).setdefault(contender.key, Samples())

        def measure() -> float:
            spawned = _now()
            result = contender.run(job, store, self.quick)
            wall = _now() - spawned
            if result["prediction"] != result["expected"]:
                raise BenchError(f"{contender.side.label} predicted {result}, not the expected")
            self.versions[contender.key] = result["version"]
            samples.add(
                wall_s=wall,
                startup_s=result["started_at"] - spawned,
                imports_s=result["imports_s"],
                load_s=result["load_s"],
                predict_s=result["predict_s"],
                after_imports_s=result["load_s"] + result["predict_s"],
                to_prediction_s=result["done_at"] - spawned,
                exit_s=wall - (result["done_at"] - spawned),
            )
            return wall

        return measure

    def log_case(self) -> Outcome:
        """Measure case (a) on fresh stores."""
        return compare(
            CASES["a"],
            self._fresh_log(self.mlflow),
            self._fresh_log(self.shipyard),
            repeat=self.repeat,
            warmup=WARMUP,
        )

    def load_cases(self, keys: list[str]) -> list[Outcome]:
        """Prepare one store per side with (a)'s code, then measure (b) and (c) on them."""
        with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
            stores = {}
            for contender in self._contenders():
                store = Path(tmp) / contender.key
                store.mkdir()
                started = _now()
                result = self._log(contender, store)
                self.prepare[contender.key] = {
                    "log_register_alias_s": round(result["value"], 3),
                    "worker_wall_s": round(_now() - started, 1),
                }
                label = contender.side.label
                print(f"(b) prepared {label}'s store: {result['value']:.2f} s", flush=True)
                stores[contender.key] = store
            wall = compare(
                CASES["b"],
                self._load(self.mlflow, stores["mlflow"]),
                self._load(self.shipyard, stores["shipyard"]),
                repeat=self.repeat,
                warmup=WARMUP,
            )
            onnx = None
            if "d" in keys:
                self.shipyard.run("export", stores["shipyard"], self.quick)
                onnx = compare(
                    CASES["d"],
                    self._load(self.mlflow, stores["mlflow"], step="load_d"),
                    self._load(self.shipyard, stores["shipyard"], "load_onnx", "load_d"),
                    repeat=self.repeat,
                    warmup=WARMUP,
                )
        load = self.steps["load"]
        after = Outcome(
            CASES["c"],
            load["mlflow"].measured("after_imports_s"),
            load["shipyard"].measured("after_imports_s"),
        )
        return [o for o in (wall, after, onnx) if o is not None and o.case.key in keys]

    def breakdown(self) -> dict[str, dict[str, dict[str, float]]]:
        """Median of every step a worker reported, per job and side (measured rounds)."""
        return {
            job: {
                side: {
                    key: round(statistics.median(samples.measured(key)), 3)
                    for key in samples.values
                }
                for side, samples in sides.items()
            }
            for job, sides in self.steps.items()
            if sides
        }


def mlflow_python() -> tuple[Path, str]:
    """The MLflow venv's python and the requirement used: the pin, or the latest 3.x.

    scikit-learn and skops are pinned to this interpreter's versions, so that
    both sides train, save and load the identical model.
    """
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in ("scikit-learn", "skops")]
    try:
        python = ensure_venv(f"mlflow-{MLFLOW_PIN}-sklearn", [f"mlflow=={MLFLOW_PIN}", *pins])
        return python, MLFLOW_PIN
    except BenchError as exc:
        print(f"mlflow=={MLFLOW_PIN} is not installable ({exc}); using the latest 3.x instead")
        return ensure_venv("mlflow-3.x-sklearn", ["mlflow>=3,<4", *pins]), "latest 3.x"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the worker options are hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--cases", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--worker", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--job",
        choices=sorted({job for jobs in JOBS.values() for job in jobs}),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from a,b,c")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def run_parent(args: argparse.Namespace) -> None:
    """Run the benchmark: measure, print each ratio, the table, and write JSON."""
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    python, requirement = mlflow_python()
    bench = Bench(
        Contender("mlflow", Side("MLflow", python, {**BYTECODE, **MLFLOW_ENV})),
        Contender("shipyard", Side("Shipyard", Path(sys.executable), BYTECODE)),
        quick=args.quick,
        repeat=args.repeat,
    )
    outcomes = []
    if "a" in args.cases:
        outcomes.append(bench.log_case())
        print_outcome(outcomes[-1], "MLflow")
    if {"b", "c", "d"} & set(args.cases):
        for outcome in bench.load_cases(args.cases):
            print_outcome(outcome, "MLflow")
            outcomes.append(outcome)
    elapsed = time.perf_counter() - started
    breakdown = bench.breakdown()
    print("medians of each step (s):", json.dumps(breakdown, indent=2), flush=True)
    title = f"Shipyard vs MLflow {bench.versions.get('mlflow', requirement)} model registry"
    print_table(outcomes, "MLflow", f"{title} (median of {args.repeat}, {elapsed:.0f} s)")
    path = write_json(
        "registry",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mlflow": bench.versions.get("mlflow", requirement),
            "shipyard": bench.versions.get("shipyard"),
            "libraries": bench.libraries,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min": {"start": load_before, "end": os.getloadavg()[0]},
            "repeat": args.repeat,
            "sizes": asdict(QUICK if args.quick else FULL),
            "model_fingerprint": bench.fingerprints,
            "prepare": bench.prepare,
            "steps": breakdown,
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
