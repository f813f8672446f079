"""Shipyard's drift report against Evidently 0.7.23's ``DataDriftPreset``, same data, same run.

Data: numeric tables generated once with numpy (seeded) and cached as Parquet
under ``benchmarks/.work/``: a reference and a current table of 20 float64
columns each, at 100,000 and at 1,000,000 rows. Five columns of the current
table are shifted: ``f00``, ``f05`` and ``f10`` by +0.5 of the reference's
standard deviation (mean shift), ``f01`` and ``f15`` scaled x1.5 around the
reference's mean; the other 15 are fresh draws from the reference's
distribution.

Each measurement is a fresh subprocess that imports its tool, reads both
Parquet files into pandas DataFrames (``pyarrow.parquet.read_table(...).to_pandas()``,
untimed, identical on every side), then times only the call that turns the two
DataFrames into a report, and takes the peak resident memory of that same
window (``VmHWM`` after resetting it through ``/proc/self/clear_refs`` once the
data are loaded; the DataFrames themselves are resident and counted).

  (a) 100k x 20, each tool's default tests       Evidently vs Shipyard   goal >= 20x
  (b) 1M x 20, default tests                     Evidently vs Shipyard   goal >= 50x
  (c) 1M x 20, Kolmogorov-Smirnov forced on both  Evidently vs Shipyard   no goal (>= 1x shown)
  (d) 1M x 20, KS: a plain ``scipy.stats.ks_2samp`` loop vs Shipyard (KS)  goal >= 1x
  peak memory in (a), (b), (c): Shipyard at most 1/4 of Evidently's        goal >= 4x
  (e) 100k x 20 and (f) 1M x 20, default tests, from the Parquet files      time and memory

Cases (e) and (f) start both sides from the same two Parquet files, each in its
own way, and time and measure from the files to the report: Evidently reads
them into pandas DataFrames (its API takes DataFrames), Shipyard is given the
paths and reads one column at a time. In (a)-(c) the DataFrames, loaded before
the window, are resident and count against both sides: 320 MB at 1M rows.

Sides alternate, one unmeasured warm-up round comes first, medians of
``--repeat`` rounds are reported; the columns each side flags are compared.

Usage: ``.venv/bin/python benchmarks/drift.py [--repeat N] [--cases a,...,f] [--quick]``
(``--quick``: case (a) only). Evidently runs from ``benchmarks/.envs/evidently-0.7.23/``,
made on first use. Results: printed, and written to ``benchmarks/results/drift.json``.

The same file is the worker (``--worker evidently|shipyard|scipy|generate``); only
the standard library and ``_harness`` are imported at module level, so it also
runs under Evidently's python.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from _harness import (
    BENCH_DIR,
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
WORK_DIR = BENCH_DIR / ".work"
EVIDENTLY_PIN = "0.7.23"
SEED = 20261207
#: Bump when the generated data change, so cached files are made again.
GEN_FORMAT = 1
WORKER_TIMEOUT = 1800
GEN_TIMEOUT = 600

N_COLUMNS = 20
COLUMNS = [f"f{i:02d}" for i in range(N_COLUMNS)]
MEAN_SHIFTED = ("f00", "f05", "f10")  # current = draw + 0.5 * reference std
SCALED = ("f01", "f15")  # current = ref mean + 1.5 * (draw - ref mean)
SHIFTED = sorted(MEAN_SHIFTED + SCALED)
MEAN_SHIFT_STD = 0.5
SCALE = 1.5
KS_ALPHA = 0.05  # the plain scipy loop flags p < 0.05 (Evidently's KS: p <= 0.05)
#: Evidently's methods whose value is a p-value (drift when value <= threshold);
#: for the others the value is a distance (drift when value >= threshold).
EVIDENTLY_P_VALUE_METHODS = {
    "ks",
    "chisquare",
    "z",
    "fisher_exact",
    "cramer_von_mises",
    "anderson",
    "mannw",
    "t_test",
    "es",
    "empirical_mmd",
}

ROWS = {"100k": 100_000, "1m": 1_000_000}


@dataclass(frozen=True)
class Spec:
    """One case: which rows, which tests, which two contenders."""

    case: Case
    rows: str
    tests: str  # "default" or "ks"
    peer: str  # "evidently" or "scipy"
    mem_case: Case | None
    source: str = "frames"  # "frames": loaded DataFrames; "files": the Parquet paths


def _time_case(key: str, title: str, goal: float) -> Case:
    return Case(key, title, "s", higher_is_better=False, min_ratio=goal)


def _mem_case(key: str, title: str) -> Case:
    return Case(f"{key}.mem", f"peak RSS, {title}", "MiB", higher_is_better=False, min_ratio=4)


SPECS = {
    "a": Spec(
        _time_case("a", "100k x 20, default tests", 20),
        "100k",
        "default",
        "evidently",
        _mem_case("a", "100k x 20, default tests"),
    ),
    "b": Spec(
        _time_case("b", "1M x 20, default tests", 50),
        "1m",
        "default",
        "evidently",
        _mem_case("b", "1M x 20, default tests"),
    ),
    "c": Spec(
        _time_case("c", "1M x 20, KS forced on both", 1),
        "1m",
        "ks",
        "evidently",
        _mem_case("c", "1M x 20, KS forced on both"),
    ),
    "d": Spec(
        _time_case("d", "1M x 20, KS: scipy ks_2samp loop vs Shipyard", 1),
        "1m",
        "ks",
        "scipy",
        None,
    ),
    "e": Spec(
        _time_case("e", "100k x 20, default tests, from Parquet files", 20),
        "100k",
        "default",
        "evidently",
        _mem_case("e", "100k x 20, default tests, from Parquet files"),
        source="files",
    ),
    "f": Spec(
        _time_case("f", "1M x 20, default tests, from Parquet files", 50),
        "1m",
        "default",
        "evidently",
        _mem_case("f", "1M x 20, default tests, from Parquet files"),
        source="files",
    ),
}
PEER_LABELS = {"evidently": "Evidently", "scipy": "scipy"}


# ================================================================== worker side


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmHWM``, ``VmRSS``), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0); True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    """Peak RSS of this process in MiB since start or the last :func:`_reset_peak`.

    ``VmHWM`` rather than ``ru_maxrss``: on Linux the latter also counts the
    parent's peak, which a child spawned with vfork inherits at exec.
    """
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


def _rss_mib() -> float:
    """Current RSS in MiB (0 when unknown)."""
    return (_status_kib("VmRSS") or 0) / 1024


def _paths(rows: int, seed: int) -> tuple[Path, Path, Path]:
    """The cached reference and current Parquet files for ``rows`` and ``seed``, and their JSON."""
    stem = WORK_DIR / f"drift-{rows}x{N_COLUMNS}-seed{seed}"
    return Path(f"{stem}-reference.parquet"), Path(f"{stem}-current.parquet"), Path(f"{stem}.json")


def _draw(rng: Any, index: int, n: int) -> Any:
    """``n`` draws of column ``index``: four families, five columns each, varied parameters."""
    family, k = divmod(index, 5)
    if family == 0:
        return rng.normal(loc=10.0 * k, scale=1.0 + k, size=n)
    if family == 1:
        return rng.lognormal(mean=0.2 * k, sigma=0.4 + 0.1 * k, size=n)
    if family == 2:
        return rng.uniform(low=-k, high=5.0 + 2 * k, size=n)
    return rng.gamma(shape=1.0 + k, scale=2.0, size=n)


def job_generate(args: argparse.Namespace) -> dict:
    """Write the reference and current tables for ``args.rows`` (same rows and seed, same bytes)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref_path, cur_path, meta_path = _paths(args.rows, args.seed)
    WORK_DIR.mkdir(exist_ok=True)
    reference, current = {}, {}
    for i, name in enumerate(COLUMNS):
        ref = _draw(np.random.default_rng([args.seed, args.rows, 0, i]), i, args.rows)
        cur = _draw(np.random.default_rng([args.seed, args.rows, 1, i]), i, args.rows)
        mean, std = float(ref.mean()), float(ref.std())
        if name in MEAN_SHIFTED:
            cur = cur + MEAN_SHIFT_STD * std
        elif name in SCALED:
            cur = mean + SCALE * (cur - mean)
        reference[name], current[name] = ref, cur
    for path, columns in ((ref_path, reference), (cur_path, current)):
        part = path.with_suffix(".parquet.part")
        pq.write_table(pa.table(columns), part)
        part.replace(path)
    meta = {
        "format": GEN_FORMAT,
        "seed": args.seed,
        "rows": args.rows,
        "columns": COLUMNS,
        "mean_shifted": list(MEAN_SHIFTED),
        "scaled": list(SCALED),
        "bytes": {"reference": ref_path.stat().st_size, "current": cur_path.stat().st_size},
    }
    meta_path.write_text(json.dumps(meta) + "\n")
    return meta


def _load(rows: int, seed: int) -> tuple[Any, Any, str]:
    """Read both tables into pandas DataFrames, and a digest of their bytes (untimed)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref_path, cur_path, _ = _paths(rows, seed)
    ref = pq.read_table(ref_path).to_pandas()
    cur = pq.read_table(cur_path).to_pandas()
    # The DataFrames' buffers come from Arrow's pool, which keeps the freed
    # Arrow tables' pages: hand those back so the baseline is the data alone.
    pa.default_memory_pool().release_unused()
    digest = hashlib.sha256()
    for frame in (ref, cur):
        if list(frame.columns) != COLUMNS:
            raise BenchError(f"unexpected columns {list(frame.columns)}")
        for name in COLUMNS:
            values = np.ascontiguousarray(frame[name].to_numpy(dtype="float64"))
            digest.update(memoryview(values).cast("B"))
    return ref, cur, digest.hexdigest()[:16]


def _file_digest(rows: int, seed: int) -> tuple[Path, Path, str]:
    """Both Parquet paths and a digest of the files' bytes (untimed)."""
    ref_path, cur_path, _ = _paths(rows, seed)
    digest = hashlib.sha256()
    for path in (ref_path, cur_path):
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return ref_path, cur_path, digest.hexdigest()[:16]


def _frames(ref: Any, cur: Any) -> tuple[Any, Any]:
    """DataFrames as given, or read from the Parquet paths as Evidently's users would."""
    if isinstance(ref, Path):
        import pyarrow.parquet as pq

        return pq.read_table(ref).to_pandas(), pq.read_table(cur).to_pandas()
    return ref, cur


# Each contender: prepare() imports the tool (untimed) and returns (version, compute,
# summarize); compute(ref, cur, tests) is the timed call (on DataFrames, or on the
# two Parquet paths for the "files" cases); summarize(result) turns
# its result into {"drift_share", "columns": {name: {...}}} (untimed).


def _evidently() -> tuple[str, Callable, Callable]:
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def compute(ref: Any, cur: Any, tests: str) -> Any:
        options = {} if tests == "default" else {"per_column_method": dict.fromkeys(COLUMNS, "ks")}
        ref, cur = _frames(ref, cur)
        return Report([DataDriftPreset(**options)]).run(current_data=cur, reference_data=ref)

    def summarize(snapshot: Any) -> dict:
        columns, share, count = {}, None, None
        for metric in snapshot.dict()["metrics"]:
            config, value = metric["config"], metric["value"]
            kind = config["type"].rsplit(":", 1)[-1]
            if kind == "DriftedColumnsCount":
                share, count = value["share"], value["count"]
            elif kind == "ValueDrift":
                method, threshold = config["method"], config["threshold"]
                is_p = method in EVIDENTLY_P_VALUE_METHODS
                drift = value <= threshold if is_p else value >= threshold
                columns[config["column"]] = {
                    "test": method,
                    "statistic": None if is_p else value,
                    "p_value": value if is_p else None,
                    "threshold": threshold,
                    "drift": bool(drift),
                }
        flagged = sum(c["drift"] for c in columns.values())
        if count is None or flagged != int(count):
            raise BenchError(f"Evidently counted {count} drifted columns, the flags say {flagged}")
        return {"drift_share": share, "columns": columns}

    return evidently.__version__, compute, summarize


def _shipyard() -> tuple[str, Callable, Callable]:
    import pyarrow.parquet  # noqa: F401  (imported on first use: not part of the timed work)

    import shipyard
    from shipyard.monitoring import drift_report

    def compute(ref: Any, cur: Any, tests: str) -> Any:
        if isinstance(ref, Path):
            ref, cur = str(ref), str(cur)
        if tests == "default":
            return drift_report(ref, cur)
        return drift_report(ref, cur, tests=tests)

    def summarize(report: Any) -> dict:
        data = report.to_dict()
        columns = {
            name: {
                key: (bool(col[key]) if key == "drift" else col.get(key))
                for key in ("test", "statistic", "p_value", "threshold", "drift", "status")
            }
            for name, col in data["columns"].items()
        }
        return {"drift_share": data["drift_share"], "columns": columns}

    return shipyard.__version__, compute, summarize


def _scipy() -> tuple[str, Callable, Callable]:
    import scipy
    from scipy.stats import ks_2samp

    def compute(ref: Any, cur: Any, tests: str) -> Any:
        ref, cur = _frames(ref, cur)
        return {c: ks_2samp(ref[c].to_numpy(), cur[c].to_numpy()) for c in COLUMNS}

    def summarize(results: Any) -> dict:
        columns = {
            name: {
                "test": "ks_2samp",
                "statistic": float(r.statistic),
                "p_value": float(r.pvalue),
                "threshold": KS_ALPHA,
                "drift": bool(r.pvalue < KS_ALPHA),
            }
            for name, r in results.items()
        }
        share = sum(c["drift"] for c in columns.values()) / len(columns)
        return {"drift_share": share, "columns": columns}

    return scipy.__version__, compute, summarize


TOOLS: dict[str, Callable[[], tuple[str, Callable, Callable]]] = {
    "evidently": _evidently,
    "shipyard": _shipyard,
    "scipy": _scipy,
}


def job_measure(args: argparse.Namespace) -> dict:
    """Import the tool, load the data (untimed), time the report, take the window's peak RSS."""
    started = time.perf_counter()
    version, compute, summarize = TOOLS[args.worker]()
    import_s = time.perf_counter() - started
    with Stopwatch() as load:
        if args.source == "files":
            ref, cur, digest = _file_digest(args.rows, args.seed)
        else:
            ref, cur, digest = _load(args.rows, args.seed)
    gc.collect()
    process_peak_before = _peak_mib()  # imports + reading Parquet
    reset = _reset_peak()
    baseline = _rss_mib()
    with Stopwatch() as watch:
        result = compute(ref, cur, args.tests)
    peak = _peak_mib()
    with Stopwatch() as extract:
        summary = summarize(result)
    return {
        "seconds": watch.seconds,
        "peak_mib": peak,
        "baseline_mib": baseline,
        "increment_mib": peak - baseline,
        "load_peak_mib": process_peak_before,
        "peak_reset": reset,
        "import_s": import_s,
        "load_s": load.seconds,
        "extract_s": extract.seconds,
        "digest": digest,
        "flagged": sorted(n for n, c in summary["columns"].items() if c["drift"]),
        "drift_share": summary["drift_share"],
        "columns": summary["columns"],
        "version": version,
    }


# ================================================================== parent side


def evidently_python() -> Path:
    """The Evidently environment's python: the pin, pandas < 3, pyarrow as in this venv."""
    requirements = [
        f"evidently=={EVIDENTLY_PIN}",
        "pandas<3",
        f"pyarrow=={metadata.version('pyarrow')}",
    ]
    return ensure_venv(f"evidently-{EVIDENTLY_PIN}", requirements)


def ensure_data(ours: Side, rows: int, seed: int) -> dict:
    """The cached tables for ``rows``: reused when complete, else made by a worker."""
    ref_path, cur_path, meta_path = _paths(rows, seed)
    if ref_path.exists() and cur_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        sizes = {"reference": ref_path.stat().st_size, "current": cur_path.stat().st_size}
        if meta.get("format") == GEN_FORMAT and meta.get("bytes") == sizes:
            print(f"reusing {ref_path.name} and {cur_path.name}", flush=True)
            return meta
    print(f"generating {rows:,} x {N_COLUMNS} reference and current tables ...", flush=True)
    started = time.perf_counter()
    args = ["--worker", "generate", "--rows", str(rows), "--seed", str(seed)]
    meta = run_worker(ours, SCRIPT, args, timeout=GEN_TIMEOUT)
    print(f"  written in {time.perf_counter() - started:.0f} s", flush=True)
    return meta


class Bench:
    """Runs the chosen cases and keeps every worker's full report."""

    def __init__(self, sides: dict[str, Side], repeat: int, seed: int) -> None:
        self.sides, self.repeat, self.seed = sides, repeat, seed
        self.versions: dict[str, str] = {}
        self.kept: dict[str, dict[str, list[dict]]] = {}

    def _measure(self, key: str, contender: str, spec: Spec) -> Callable[[], float]:
        """A measurement: one fresh worker; keeps its report, returns its seconds."""
        results = self.kept.setdefault(key, {}).setdefault(contender, [])
        args = ["--worker", contender, "--rows", str(ROWS[spec.rows]), "--tests", spec.tests]
        args += ["--source", spec.source]

        def measure() -> float:
            result = run_worker(
                self.sides[contender],
                SCRIPT,
                [*args, "--seed", str(self.seed)],
                timeout=WORKER_TIMEOUT,
            )
            self.versions[contender] = result["version"]
            results.append(result)
            print(
                f"    {contender:9s} {spec.rows} {spec.tests:7s} {result['seconds']:8.3f} s  "
                f"peak {result['peak_mib']:7.0f} MiB (+{result['increment_mib']:.0f})  "
                f"flagged {','.join(result['flagged']) or '-'}",
                flush=True,
            )
            return result["seconds"]

        return measure

    def case(self, key: str) -> tuple[list[Outcome], dict]:
        """Measure one case; return its outcomes (time, memory) and the checks made."""
        spec = SPECS[key]
        print(f"({key}) {spec.case.title} ...", flush=True)
        outcome = compare(
            spec.case,
            self._measure(key, spec.peer, spec),
            self._measure(key, "shipyard", spec),
            repeat=self.repeat,
        )
        # compare() runs one warm-up round first: drop it from what is kept.
        peer = self.kept[key][spec.peer] = self.kept[key][spec.peer][1:]
        ours = self.kept[key]["shipyard"] = self.kept[key]["shipyard"][1:]
        outcomes = [outcome]
        if spec.mem_case is not None:
            outcomes.append(
                Outcome(
                    spec.mem_case,
                    [r["peak_mib"] for r in peer],
                    [r["peak_mib"] for r in ours],
                )
            )
        return outcomes, checks(spec, peer, ours)


def _max_diff(peer: dict, ours: dict, field: str) -> float | None:
    """Largest absolute difference of ``field`` over the columns both report it for."""
    diffs = [
        abs(peer[c][field] - ours[c][field])
        for c in COLUMNS
        if c in peer
        and c in ours
        and peer[c].get(field) is not None
        and ours[c].get(field) is not None
    ]
    return max(diffs) if diffs else None


def checks(spec: Spec, peer: list[dict], ours: list[dict]) -> dict:
    """Same data on both sides, stable flags, and what each side flagged."""
    digests = {r["digest"] for r in peer + ours}
    if len(digests) != 1:
        raise BenchError(f"the sides read different data: digests {sorted(digests)}")
    peer_flags = {tuple(r["flagged"]) for r in peer}
    ours_flags = {tuple(r["flagged"]) for r in ours}
    p_cols, o_cols = peer[0]["columns"], ours[0]["columns"]
    result = {
        "digest": digests.pop(),
        "shifted": SHIFTED,
        "peer_flagged": list(peer[0]["flagged"]),
        "shipyard_flagged": list(ours[0]["flagged"]),
        "flags_stable": len(peer_flags) == 1 and len(ours_flags) == 1,
        "same_columns_flagged": peer[0]["flagged"] == ours[0]["flagged"],
        "peer_tests": sorted({c["test"] for c in p_cols.values()}),
        "shipyard_tests": sorted({str(c["test"]) for c in o_cols.values()}),
        "shipyard_statuses": sorted({str(c.get("status")) for c in o_cols.values()}),
        "peer_drift_share": peer[0]["drift_share"],
        "shipyard_drift_share": ours[0]["drift_share"],
        "max_abs_diff_p_value": _max_diff(p_cols, o_cols, "p_value"),
        "max_abs_diff_statistic": _max_diff(p_cols, o_cols, "statistic"),
    }
    if spec.tests == "ks":
        result["columns"] = {
            c: {
                "peer_p_value": p_cols.get(c, {}).get("p_value"),
                "shipyard_p_value": o_cols.get(c, {}).get("p_value"),
                "shipyard_statistic": o_cols.get(c, {}).get("statistic"),
            }
            for c in COLUMNS
        }
    return result


def _median(results: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in results)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the worker options are hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--cases", default="a,b,c,d,e,f", help="comma-separated subset of a,b,c,d,e,f"
    )
    parser.add_argument("--quick", action="store_true", help="case (a) only (100k rows)")
    hidden = argparse.SUPPRESS
    parser.add_argument("--worker", choices=[*sorted(TOOLS), "generate"], help=hidden)
    parser.add_argument("--rows", type=int, help=hidden)
    parser.add_argument("--tests", choices=["default", "ks"], default="default", help=hidden)
    parser.add_argument("--source", choices=["frames", "files"], default="frames", help=hidden)
    parser.add_argument("--seed", type=int, default=SEED, help=hidden)
    args = parser.parse_args(argv)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(args.cases) - set(SPECS)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from {','.join(SPECS)}")
    if args.quick:
        args.cases = ["a"]
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def print_checks(key: str, spec: Spec, found: dict) -> None:
    """Which columns each side flagged, against the five shifted ones."""
    peer = PEER_LABELS[spec.peer]
    same = "same columns" if found["same_columns_flagged"] else "DIFFERENT columns"
    print(
        f"({key}) flagged: {peer} {','.join(found['peer_flagged']) or '-'} "
        f"[{'/'.join(found['peer_tests'])}]; Shipyard {','.join(found['shipyard_flagged']) or '-'} "
        f"[{'/'.join(found['shipyard_tests'])}] -> {same} (shifted: {','.join(SHIFTED)})",
        flush=True,
    )
    if spec.tests == "ks":
        print(
            f"({key}) max |p-value difference| {found['max_abs_diff_p_value']}, "
            f"max |statistic difference| {found['max_abs_diff_statistic']}",
            flush=True,
        )


def run_parent(args: argparse.Namespace) -> None:
    """Run the benchmark: make or reuse the data, measure, print, write JSON."""
    started, load_before = time.perf_counter(), os.getloadavg()
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in load_before)}", flush=True)
    ours = Side("Shipyard", Path(sys.executable))
    sides = {"shipyard": ours, "scipy": Side("scipy", Path(sys.executable))}
    if any(SPECS[k].peer == "evidently" for k in args.cases):
        python = evidently_python()
        sides["evidently"] = Side("Evidently", python, {"ITERATIVE_DO_NOT_TRACK": "1"})
    data = {
        size: ensure_data(ours, ROWS[size], args.seed)
        for size in sorted({SPECS[k].rows for k in args.cases})
    }
    bench = Bench(sides, args.repeat, args.seed)
    outcomes: list[Outcome] = []
    found: dict[str, dict] = {}
    load_per_case: dict[str, list[float]] = {}

    def sides_summary(key: str) -> dict:
        fields = ("seconds", "peak_mib", "baseline_mib", "increment_mib", "load_peak_mib")
        fields += ("import_s", "load_s", "extract_s")
        return {
            side: {f"{f}_median": round(_median(results, f), 4) for f in fields}
            | {"version": results[0]["version"], "peak_reset": results[0]["peak_reset"]}
            for side, results in bench.kept[key].items()
        }

    def save(complete: bool) -> Path:
        """Write the JSON: after each case (so a stopped run keeps what it measured) and at the end."""
        return write_json(
            "drift",
            {
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "versions": bench.versions,
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_avg": {"start": list(load_before), "end": list(os.getloadavg())},
                "load_avg_1min_per_case": load_per_case,
                "repeat": args.repeat,
                "data": {
                    "rows": {s: ROWS[s] for s in data},
                    "columns": N_COLUMNS,
                    "seed": args.seed,
                    "mean_shifted": f"{', '.join(MEAN_SHIFTED)}: + {MEAN_SHIFT_STD} x reference std",
                    "scaled": f"{', '.join(SCALED)}: x {SCALE} around the reference mean",
                    "parquet_bytes": {s: m["bytes"] for s, m in data.items()},
                },
                "timed": "(a)-(d): the call from two loaded pandas DataFrames to the computed "
                "report (imports, reading Parquet and extracting results untimed); (e), (f): "
                "from the two Parquet paths to the report, reading included",
                "memory": "VmHWM of the worker over the timed window (reset via "
                "/proc/self/clear_refs after loading; the DataFrames are resident and counted); "
                "increment = that peak minus the RSS at the window's start",
                "cases": {o.case.key: o.as_dict() for o in outcomes},
                "sides": {key: sides_summary(key) for key in found},
                "checks": found,
                "wall_s": round(time.perf_counter() - started, 1),
                "complete": complete,
            },
        )

    for key in args.cases:
        load_per_case[key] = [round(os.getloadavg()[0], 2)]
        case_outcomes, found[key] = bench.case(key)
        load_per_case[key].append(round(os.getloadavg()[0], 2))
        for outcome in case_outcomes:
            print_outcome(outcome, PEER_LABELS[SPECS[key].peer])
        print_checks(key, SPECS[key], found[key])
        outcomes.extend(case_outcomes)
        save(complete=False)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    peers = ", ".join(
        f"{PEER_LABELS[p]} {bench.versions[p]}"
        for p in ("evidently", "scipy")
        if p in bench.versions
    )
    title = (
        f"Shipyard {bench.versions.get('shipyard')} drift_report vs {peers} "
        f"(median of {args.repeat}, {elapsed:.0f} s; ratio = peer / Shipyard)"
    )
    print_table(outcomes, "peer", title)
    print(
        f"load average: start {' '.join(f'{v:.2f}' for v in load_before)}, "
        f"end {' '.join(f'{v:.2f}' for v in load_after)} (2 cores shared)",
        flush=True,
    )

    path = save(complete=True)
    print(f"results written to {path}; whole benchmark took {elapsed:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the parent by default, a worker with ``--worker``."""
    args = parse_args(argv)
    if args.worker == "generate":
        emit(job_generate(args))
    elif args.worker:
        emit(job_measure(args))
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
