"""How Shipyard's drift report scales with the current window: time and peak memory up to 10M rows.

The data are ``drift.py``'s: 20 float64 columns, five of them shifted in the
current window (f00, f05, f10 by +0.5 reference std; f01, f15 scaled x1.5),
here with a 1,000,000-row reference and current windows of 1M, 3M and 10M
rows, each a Parquet file written row group by row group (1M rows each) under
``benchmarks/.work/``. A 10M x 20 window is 1.6 GB of float64.

Each measurement is a fresh process that imports Shipyard, resets its peak
resident memory (``VmHWM``), and times ``sy.drift_report(reference_path,
current_path)`` with the default tests. Windows above ``TALLY_ROWS`` (2M) are
read in Arrow batches of 1M rows and tallied against the reference, so memory
should not grow with the window; the 10M window is also run with tallying
turned off (the whole column read and sorted, as below 2M) to show what it saves.

There is no peer here: Evidently ran out of memory on 10M rows (evidently#1526),
and ``drift.py`` compares with it at 100k and 1M rows.

Usage: ``.venv/bin/python benchmarks/drift_window.py [--sizes 1,3,10] [--no-whole]``.
Results: printed, and written to ``benchmarks/results/drift-window.json``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

from _harness import BENCH_DIR, Side, Stopwatch, emit, run_worker, write_json
from drift import COLUMNS, MEAN_SHIFT_STD, MEAN_SHIFTED, SCALE, SCALED, SHIFTED, _draw, _peak_mib
from drift import _reset_peak as reset_peak

SCRIPT = Path(__file__).resolve()
WORK_DIR = BENCH_DIR / ".work"
SEED = 20261128
REFERENCE_ROWS = 1_000_000
ROW_GROUP = 1_000_000
WORKER_TIMEOUT = 1800


def _path(role: str, rows: int) -> Path:
    return WORK_DIR / f"drift-window-{role}-{rows}x{len(COLUMNS)}-seed{SEED}.parquet"


def write_table(role: str, rows: int) -> Path:
    """Write (once) a reference or current table of ``rows`` rows, 1M-row group by group."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = _path(role, rows)
    if path.exists():
        return path
    WORK_DIR.mkdir(exist_ok=True)
    # The shifts are relative to the reference's own moments, from its seed.
    moments = {}
    for i, name in enumerate(COLUMNS):
        ref = _draw(np.random.default_rng([SEED, 0, i, 0]), i, REFERENCE_ROWS)
        moments[name] = (float(ref.mean()), float(ref.std()))
    part = path.with_suffix(".part")
    schema = pa.schema([(name, pa.float64()) for name in COLUMNS])
    with pq.ParquetWriter(part, schema) as writer:
        for group, start in enumerate(range(0, rows, ROW_GROUP)):
            n = min(ROW_GROUP, rows - start)
            stream = 0 if role == "reference" else 1
            columns = {}
            for i, name in enumerate(COLUMNS):
                values = _draw(np.random.default_rng([SEED, stream, i, group]), i, n)
                mean, std = moments[name]
                if role == "current" and name in MEAN_SHIFTED:
                    values = values + MEAN_SHIFT_STD * std
                elif role == "current" and name in SCALED:
                    values = mean + SCALE * (values - mean)
                columns[name] = values
            writer.write_table(pa.table(columns, schema=schema))
    part.replace(path)
    return path


def job_measure(args: argparse.Namespace) -> dict:
    from shipyard.monitoring import _api, drift_report

    if args.tally_rows is not None:
        _api.TALLY_ROWS = args.tally_rows
    baseline = _peak_mib()
    reset_peak()
    with Stopwatch() as watch:
        report = drift_report(args.reference, args.current)
    peak = _peak_mib()
    found = report.to_dict()["columns"]
    return {
        "seconds": watch.seconds,
        "peak_mib": peak,
        "after_import_mib": baseline,
        "flagged": sorted(name for name, column in found.items() if column["drift"]),
        "tests": sorted({column["test"] for column in found.values()}),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,3,10", help="current windows, millions of rows")
    parser.add_argument(
        "--no-whole", action="store_true", help="skip the 10M run with tallying turned off"
    )
    hidden = argparse.SUPPRESS
    parser.add_argument("--worker", action="store_true", help=hidden)
    parser.add_argument("--reference", help=hidden)
    parser.add_argument("--current", help=hidden)
    parser.add_argument("--tally-rows", type=int, help=hidden)
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(float(s) * 1_000_000) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes takes numbers of millions such as 1,3,10, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) <= 0:
        parser.error("--sizes needs at least one positive size")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        emit(job_measure(args))
        return
    ours = Side("shipyard", Path(sys.executable))
    print(f"writing data under {WORK_DIR} (once) ...", flush=True)
    reference = write_table("reference", REFERENCE_ROWS)
    runs = [(rows, None) for rows in args.sizes]
    if not args.no_whole:
        runs.append((max(args.sizes), 2**62))
    results = []
    print(f"{'current rows':>14} {'mode':>8} {'seconds':>9} {'peak MiB':>9} {'flagged':>8}")
    for rows, tally_rows in runs:
        current = write_table("current", rows)
        worker_args = ["--worker", "--reference", str(reference), "--current", str(current)]
        if tally_rows is not None:
            worker_args += ["--tally-rows", str(tally_rows)]
        found = run_worker(ours, SCRIPT, worker_args, timeout=WORKER_TIMEOUT)
        mode = "whole" if tally_rows is not None or rows <= 2_000_000 else "tallied"
        found.update(rows=rows, mode=mode, same_columns_flagged=found["flagged"] == SHIFTED)
        results.append(found)
        print(
            f"{rows:>14,} {mode:>8} {found['seconds']:>9.2f} {found['peak_mib']:>9.0f} "
            f"{len(found['flagged']):>8}",
            flush=True,
        )
    default = [r for r in results if not (r["mode"] == "whole" and r["rows"] > 2_000_000)]
    smallest, largest = default[0], default[-1]
    growth = largest["peak_mib"] / smallest["peak_mib"]
    print(
        f"peak memory {largest['rows']:,} rows / {smallest['rows']:,} rows: {growth:.2f}x "
        f"for {largest['rows'] / smallest['rows']:.0f}x the rows; "
        f"every run flagged exactly {SHIFTED}: {all(r['same_columns_flagged'] for r in results)}"
    )
    path = write_json(
        "drift-window",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "reference_rows": REFERENCE_ROWS,
            "columns": len(COLUMNS),
            "shifted": SHIFTED,
            "runs": results,
            "peak_growth": growth,
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
