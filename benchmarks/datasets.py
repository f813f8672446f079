"""Shipyard dataset registration against ``dvc add`` (DVC 3.67.1), same generated CSV, same run.

Measured on one generated CSV (default about 1 GB; ten mixed columns, cached
under ``benchmarks/.work/``), each measurement a fresh subprocess:

  sha256    ``hashlib.sha256`` over the file's bytes in 1 MiB reads: the physical
            floor of one read and one hash
  DVC       (1) first ``dvc add file.csv`` in a fresh ``dvc init --no-scm`` repo,
            (2) ``dvc add`` again on the unchanged file, (3) ``dvc status``;
            each the wall time of the ``dvc`` command, peak RSS from
            ``RUSAGE_CHILDREN`` of a worker that ran only that command
  Shipyard  (1) first ``sy.register_dataset("bench", path)`` into a fresh store,
            (2) the same call again on the unchanged file; the call's time, and
            the process-level time (interpreter start + imports + store open +
            call) to set beside DVC's command; peak RSS of the worker
            (``ru_maxrss``), and that of a worker that only imports Shipyard and
            pyarrow

The three contenders take turns (the order rotates each round), one unmeasured
warm-up round comes first, medians of ``--repeat`` rounds are reported. The
file is read once, untimed, before each contender's turn so that all of them
start from a warm page cache (the OS cache is not dropped: see the README).
Afterwards a breakdown of Shipyard's first registration (timers around the
pass's steps, and a cProfile) shows where its time goes. ``--big`` adds the
streaming case: a 5 GB CSV registered once into a fresh store (goal: peak RSS
under 1 GB).

Usage: ``.venv/bin/python benchmarks/datasets.py [--repeat N] [--size-gb G] [--big] [--quick]``.
DVC runs from ``benchmarks/.envs/dvc-3.67.1/``, made on first use.
Results: printed, and written to ``benchmarks/results/datasets.json``.

The same file is the worker (``--worker JOB``); only the standard library and
``_harness`` are imported at module level, so it also runs under DVC's python.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _harness import (
    BENCH_DIR,
    BenchError,
    Side,
    Stopwatch,
    emit,
    ensure_venv,
    run_worker,
    write_json,
)

SCRIPT = Path(__file__).resolve()
WORK_DIR = BENCH_DIR / ".work"
DVC_PIN = "3.67.1"
DATASET = "bench"
FILE_NAME = "file.csv"
READ_CHUNK = 1 << 20
GEN_CHUNK_ROWS = 1_000_000
#: Bump when the generated data changes, so cached files are made again.
GEN_FORMAT = 1
SEED = 20261127
BIG_GB = 5.0
WORKER_TIMEOUT = 900
BIG_TIMEOUT = 3600

GOAL_FIRST_VS_SHA256 = 1.5  # first registration <= 1.5x the sha256 time
GOAL_AGAIN_SPEEDUP = 10.0  # unchanged re-registration >= 10x faster than the first
GOAL_BIG_RSS_MIB = 1e9 / 2**20  # 5 GB streaming registration: peak RSS < 1 GB (953.7 MiB)


def _rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size in MiB.

    For this process: ``VmHWM``, the peak of its own memory since it started.
    (Linux's ``ru_maxrss`` would also count the parent's peak, which a child
    spawned with vfork inherits at exec.) For its children: ``ru_maxrss`` of
    ``RUSAGE_CHILDREN``, the largest of the reaped children, in KiB.
    """
    if who == resource.RUSAGE_SELF:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    return resource.getrusage(who).ru_maxrss / 1024


# ================================================================== worker side


def job_sha256(args: argparse.Namespace) -> dict:
    """The floor: one read of the file and one sha256 over its bytes."""
    digest = hashlib.sha256()
    with Stopwatch() as watch, open(args.file, "rb", buffering=0) as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return {"seconds": watch.seconds, "rss_mib": _rss_mib(), "digest": digest.hexdigest()}


def job_dvc(args: argparse.Namespace) -> dict:
    """One ``dvc`` command in the repo, timed as a subprocess; its peak RSS from RUSAGE_CHILDREN.

    Runs under the DVC environment's python and starts nothing else, so the
    children's peak is the command's own (a child started by vfork also
    carries this worker's own peak, about 10 MiB, well below DVC's). ``dvc
    status -q`` exits 1 when anything changed, which fails the worker.
    """
    import importlib.metadata

    command = [str(Path(sys.executable).parent / "dvc"), args.dvc, "-q"]
    if args.dvc == "add":
        command.append(FILE_NAME)
    with Stopwatch() as watch:
        done = subprocess.run(command, cwd=args.repo, capture_output=True, text=True)
    rss = _rss_mib(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return {"seconds": watch.seconds, "rss_mib": rss, "version": importlib.metadata.version("dvc")}


def _shipyard() -> tuple[Any, float]:
    """Import shipyard and its dataset module (which imports pyarrow); the seconds it took.

    What the registration imports lazily (pyarrow.csv, pyarrow.parquet, and
    whatever else it touches) stays inside the call, as it would in a script.
    """
    with Stopwatch() as watch:
        import shipyard as sy

        sy.register_dataset  # noqa: B018  (resolves the lazily imported shipyard.data)
    return sy, watch.seconds


def job_init_store(args: argparse.Namespace) -> dict:
    """Create the fresh store (schema and all), untimed, like ``dvc init`` for DVC."""
    sy, _ = _shipyard()
    with sy.Client().store.read():
        pass
    return {"version": sy.__version__}


def job_imports(args: argparse.Namespace) -> dict:
    """Peak RSS of a worker that only imports Shipyard and pyarrow (csv and parquet too)."""
    _, seconds = _shipyard()
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    return {"seconds": seconds, "rss_mib": _rss_mib()}


def job_register(args: argparse.Namespace) -> dict:
    """``sy.register_dataset(DATASET, file)`` into the store SHIPYARD_HOME names.

    ``seconds`` is the call alone; ``process_seconds`` adds what a command
    would pay too: the interpreter's start (from the parent's spawn time),
    the imports, and opening the store.
    """
    started = time.time() - args.t0
    sy, import_seconds = _shipyard()
    with Stopwatch() as opening, sy.Client().store.read():
        pass
    with Stopwatch() as watch:
        found = sy.register_dataset(DATASET, args.file)
    return {
        "seconds": watch.seconds,
        "process_seconds": started + import_seconds + opening.seconds + watch.seconds,
        "start_seconds": started,
        "import_seconds": import_seconds,
        "open_seconds": opening.seconds,
        "rss_mib": _rss_mib(),
        "version": sy.__version__,
        "dataset_version": found.version,
        "digest": found.digest,
        "rows": found.rows,
        "parquet_bytes": found.bytes,
    }


def _timed_steps() -> tuple[dict[str, float], Callable[[], None]]:
    """Wrap the steps of a registration in timers; return the timers and an undo."""
    import pyarrow.parquet as pq

    from shipyard.blobs import _base
    from shipyard.data import _register

    timers: dict[str, float] = {}

    def timed(key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[key] = timers.get(key, 0.0) + time.perf_counter() - start

        return wrapper

    def timed_batches(batches: Iterator[Any]) -> Iterator[Any]:
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                timers["parse"] = timers.get("parse", 0.0) + time.perf_counter() - start
            yield batch

    open_source = timed("open", _register.open_source)

    def opened(data: Any) -> Any:
        source = open_source(data)
        source.batches = timed_batches(source.batches)
        return source

    patches = [
        (_register, "open_source", opened),
        (_register, "_single_pass", timed("pass", _register._single_pass)),
        (_register, "infer_contract", timed("finish", _register.infer_contract)),
        (_register.Profiler, "update", timed("profile", _register.Profiler.update)),
        (_register.Profiler, "finish", timed("finish", _register.Profiler.finish)),
        (_register.ContractChecker, "update", timed("contract", _register.ContractChecker.update)),
        (pq.ParquetWriter, "write_table", timed("parquet", pq.ParquetWriter.write_table)),
        (_base.BlobWriter, "write", timed("hash_write", _base.BlobWriter.write)),
        (os, "fsync", timed("fsync", os.fsync)),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)

    def undo() -> None:
        for owner, name, value in saved:
            setattr(owner, name, value)

    return timers, undo


def _stages(timers: dict[str, float], total: float) -> list[list[Any]]:
    """[step, seconds, share of the call] rows from the timers of one registration."""
    get = timers.get
    parquet_encode = get("parquet", 0.0) - get("hash_write", 0.0)
    in_pass = (
        get("parse", 0.0)
        + get("profile", 0.0)
        + get("contract", 0.0)
        + get("finish", 0.0)
        + get("parquet", 0.0)
        + get("fsync", 0.0)
    )
    steps = [
        ("open the CSV (first 16 MiB block read, types inferred)", get("open", 0.0)),
        ("CSV parse (waiting for the next batch; reader threads)", get("parse", 0.0)),
        ("profile (Profiler.update)", get("profile", 0.0)),
        ("contract check (ContractChecker.update)", get("contract", 0.0)),
        ("Parquet encode + snappy (write_table minus sink writes)", parquet_encode),
        ("sha256 + file write of the Parquet bytes (BlobWriter.write)", get("hash_write", 0.0)),
        ("fsync of the blob", get("fsync", 0.0)),
        ("profile finish + contract inference", get("finish", 0.0)),
        ("rest of the pass (row-group regrouping, footer, rename)", get("pass", 0.0) - in_pass),
        (
            "outside the pass (fingerprint, store reads/writes)",
            total - get("open", 0.0) - get("pass", 0.0),
        ),
    ]
    return [[name, round(seconds, 3), round(seconds / total, 3)] for name, seconds in steps]


def job_breakdown(args: argparse.Namespace) -> dict:
    """Where a registration's time goes: timers around its steps, on two registrations.

    ``first``: the first registration into a fresh store (no contract yet, so
    none is checked; one is inferred). ``same_bytes_new_path``: the same bytes
    under another file name, so the fingerprint misses and the full pass runs
    again, now checked against the inferred contract; it finds the stored
    version by digest.
    """
    sy, _ = _shipyard()
    with sy.Client().store.read():
        pass
    out: dict[str, Any] = {}
    for key, path in (("first", args.file), ("same_bytes_new_path", args.file2)):
        timers, undo = _timed_steps()
        try:
            with Stopwatch() as watch:
                found = sy.register_dataset(DATASET, path)
        finally:
            undo()
        out[key] = {
            "seconds": round(watch.seconds, 3),
            "dataset_version": found.version,
            "parquet_bytes": found.bytes,
            "stages": _stages(timers, watch.seconds),
        }
    out["rss_mib"] = _rss_mib()
    return out


def job_cprofile(args: argparse.Namespace) -> dict:
    """A cProfile of a first registration: the top functions by own time (main thread only)."""
    import cProfile
    import pstats

    sy, _ = _shipyard()
    with sy.Client().store.read():
        pass
    profiler = cProfile.Profile()
    with Stopwatch() as watch:
        profiler.enable()
        sy.register_dataset(DATASET, args.file)
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[: args.top]
    rows = []
    for (file, line, func), (_, calls, own, cumulative, _) in top:
        where = func if file == "~" else f"{Path(file).name}:{line}({func})"
        rows.append([where, calls, round(own, 3), round(cumulative, 3)])
    return {"seconds": watch.seconds, "top_by_own_time": rows}


# ================================================================== the work file


@dataclass(frozen=True)
class WorkFile:
    """A generated CSV and what it holds."""

    path: Path
    rows: int
    bytes: int
    seed: int
    columns: list[str]


_CATEGORIES = ["electronics", "groceries", "clothing", "home", "toys", "books", "sports", "beauty"]
_COUNTRIES = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CN", "ES", "IT", "NL", "SE", "PL", "CA"]
_STATUSES = ["completed", "pending", "refunded", "cancelled"]


def _chunk(seed: int, index: int, start: int, rows: int) -> Any:
    """Rows ``start .. start+rows`` of the generated table (chunk ``index``), as pyarrow."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, index])

    def pick(values: list[str], null_share: float = 0.0) -> pa.Array:
        taken = pa.array(values).take(pa.array(rng.integers(0, len(values), rows)))
        if null_share:
            mask = pa.array(rng.random(rows) < null_share)
            taken = pc.if_else(mask, pa.scalar(None, pa.string()), taken)
        return taken

    seconds = rng.integers(0, 365 * 86_400, rows) + np.datetime64("2025-01-01T00:00:00", "s")
    return pa.table(
        {
            "order_id": pa.array(np.arange(start, start + rows, dtype=np.int64)),
            "customer_id": pa.array(rng.integers(1, 2_000_000, rows)),
            "created_at": pa.array(seconds.astype("datetime64[s]")),
            "category": pick(_CATEGORIES),
            "country": pick(_COUNTRIES, null_share=0.02),
            "status": pick(_STATUSES),
            "amount": pa.array(np.round(rng.lognormal(3.5, 1.0, rows), 2)),
            "discount": pa.array(np.round(rng.random(rows) * 0.3, 4), mask=rng.random(rows) < 0.6),
            "quantity": pa.array(rng.integers(1, 12, rows), mask=rng.random(rows) < 0.01),
            "is_returning": pa.array(rng.random(rows) < 0.35),
        }
    )


def _free_bytes(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def need_disk(path: Path, wanted: int, what: str) -> None:
    """Refuse to start when ``path``'s file system has less than ``wanted`` bytes free."""
    free = _free_bytes(path)
    if free < wanted:
        raise BenchError(
            f"{what} needs about {wanted / 1e9:.1f} GB free under {path}; "
            f"{free / 1e9:.1f} GB are. Free some space or pass a smaller --size-gb."
        )


def _work_paths(size_gb: float, seed: int) -> tuple[Path, Path]:
    """The cached CSV for ``size_gb`` and ``seed``, and the JSON that says it is complete."""
    stem = f"datasets-{size_gb:g}gb-seed{seed}"
    return WORK_DIR / f"{stem}.csv", WORK_DIR / f"{stem}.json"


def job_generate(args: argparse.Namespace) -> dict:
    """Write the CSV: chunks of rows from numpy, written with pyarrow.csv.

    The last chunk is cut so the file ends near the size asked for; the same
    size and seed give the same bytes. The JSON beside it is written last.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path, meta_path = _work_paths(args.size_gb, args.seed)
    wanted = int(args.size_gb * 1e9)
    part = path.with_suffix(".csv.part")
    rows = written = index = 0
    columns: list[str] = []
    with open(part, "wb") as out:
        while written < wanted:
            table = _chunk(args.seed, index, rows, GEN_CHUNK_ROWS)
            columns = table.column_names
            options = pacsv.WriteOptions(include_header=index == 0)
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, options)
            data = sink.getvalue()
            if written + data.size > wanted:  # cut the last chunk near the size asked for
                keep = max(1, int(table.num_rows * (wanted - written) / data.size))
                table = table.slice(0, keep)
                sink = pa.BufferOutputStream()
                pacsv.write_csv(table, sink, options)
                data = sink.getvalue()
            out.write(data)
            written += data.size
            rows += table.num_rows
            index += 1
    part.replace(path)
    meta = {
        "format": GEN_FORMAT,
        "seed": args.seed,
        "rows": rows,
        "bytes": written,
        "columns": columns,
    }
    meta_path.write_text(json.dumps(meta) + "\n")
    return meta


def work_file(ours: Side, size_gb: float, seed: int) -> WorkFile:
    """The generated CSV of about ``size_gb`` GB for ``seed``: reused if cached, else made.

    It is made by a worker, so this process stays small.
    """
    path, meta_path = _work_paths(size_gb, seed)
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == GEN_FORMAT and meta.get("bytes") == path.stat().st_size:
            print(f"reusing {path} ({meta['bytes'] / 1e9:.2f} GB, {meta['rows']:,} rows)")
            return WorkFile(path, meta["rows"], meta["bytes"], seed, meta["columns"])
    need_disk(WORK_DIR, int(size_gb * 1e9 * 1.1), f"generating a {size_gb:g} GB CSV")
    print(f"generating {path} (about {size_gb:g} GB) ...", flush=True)
    started = time.perf_counter()
    args = ["--worker", "generate", "--size-gb", repr(size_gb), "--seed", str(seed)]
    meta = run_worker(ours, SCRIPT, args, timeout=BIG_TIMEOUT)
    print(
        f"  {meta['bytes'] / 1e9:.2f} GB, {meta['rows']:,} rows in {time.perf_counter() - started:.0f} s"
    )
    return WorkFile(path, meta["rows"], meta["bytes"], seed, meta["columns"])


def warm_cache(path: Path) -> None:
    """Read the file once, untimed, so every contender starts from a warm page cache."""
    with open(path, "rb", buffering=0) as fh:
        while fh.read(8 * READ_CHUNK):
            pass


def place(source: Path, folder: Path, name: str = FILE_NAME) -> Path:
    """Hard-link ``source`` into ``folder`` (copy it across file systems)."""
    target = folder / name
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


JOBS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "sha256": job_sha256,
    "dvc": job_dvc,
    "init-store": job_init_store,
    "imports": job_imports,
    "register": job_register,
    "breakdown": job_breakdown,
    "cprofile": job_cprofile,
    "generate": job_generate,
}


# ================================================================== parent side


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


class Bench:
    """Runs the rounds for sha256, DVC and Shipyard and keeps what each worker reported."""

    def __init__(self, work: WorkFile, dvc_python: Path) -> None:
        self.work = work
        self.ours = Side("Shipyard", Path(sys.executable))
        self.dvc = Side("DVC", dvc_python, {"DVC_NO_ANALYTICS": "1"})
        self.dvc_bin = dvc_python.parent / "dvc"
        self.samples: dict[str, list[dict]] = {}
        self.versions: dict[str, str] = {}
        self.tmp_root = WORK_DIR / "tmp"
        self.tmp_root.mkdir(parents=True, exist_ok=True)

    def _keep(self, measured: bool, key: str, result: dict) -> dict:
        if measured:
            self.samples.setdefault(key, []).append(result)
        return result

    def _tmp(self, prefix: str) -> tempfile.TemporaryDirectory:
        return tempfile.TemporaryDirectory(prefix=prefix, dir=self.tmp_root)

    @staticmethod
    def _store_env(store: Path) -> dict[str, str]:
        return {
            "SHIPYARD_HOME": str(store),
            "SHIPYARD_URI": f"sqlite:///{store}/shipyard.db",
            "SHIPYARD_ARTIFACTS": str(store / "blobs"),
        }

    def shipyard_worker(
        self, job: str, store: Path, extra: list[str], timeout: float = WORKER_TIMEOUT
    ) -> dict:
        """One Shipyard worker against ``store`` (cwd: the store's parent folder)."""
        args = ["--worker", job, *extra, "--t0", repr(time.time())]
        return run_worker(
            self.ours, SCRIPT, args, env=self._store_env(store), cwd=store.parent, timeout=timeout
        )

    def sha256_turn(self, measured: bool) -> str:
        warm_cache(self.work.path)
        result = run_worker(
            self.ours, SCRIPT, ["--worker", "sha256", "--file", str(self.work.path)]
        )
        self._keep(measured, "sha256", result)
        return f"sha256 {result['seconds']:.2f} s ({result['rss_mib']:.0f} MiB)"

    def dvc_turn(self, measured: bool) -> str:
        with self._tmp("dvc-") as tmp:
            repo = Path(tmp)
            place(self.work.path, repo)
            env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(repo / "site")}
            for command in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"]):
                subprocess.run([str(self.dvc_bin), *command], cwd=repo, env=env, check=True)
            warm_cache(self.work.path)
            site = {"DVC_SITE_CACHE_DIR": env["DVC_SITE_CACHE_DIR"]}
            out = {}
            for key, command in (
                ("dvc_first", "add"),
                ("dvc_again", "add"),
                ("dvc_status", "status"),
            ):
                args = ["--worker", "dvc", "--dvc", command, "--repo", str(repo)]
                result = run_worker(self.dvc, SCRIPT, args, env=site, cwd=repo)
                out[key] = self._keep(measured, key, result)
            self.versions["dvc"] = out["dvc_first"]["version"]
        return (
            f"DVC add {out['dvc_first']['seconds']:.2f} s ({out['dvc_first']['rss_mib']:.0f} MiB), "
            f"add again {out['dvc_again']['seconds']:.2f} s, status {out['dvc_status']['seconds']:.2f} s"
        )

    def shipyard_turn(self, measured: bool) -> str:
        with self._tmp("shipyard-") as tmp:
            store = Path(tmp) / "store"
            file = place(self.work.path, Path(tmp))
            self.shipyard_worker("init-store", store, [])
            imports = self._keep(measured, "sy_imports", self.shipyard_worker("imports", store, []))
            warm_cache(self.work.path)
            first = self.shipyard_worker("register", store, ["--file", str(file)])
            again = self.shipyard_worker("register", store, ["--file", str(file)])
            if (first["dataset_version"], first["digest"]) != (
                again["dataset_version"],
                again["digest"],
            ):
                raise BenchError(f"unchanged file gave a new version: {first} then {again}")
            if first["rows"] != self.work.rows:
                raise BenchError(f"registered {first['rows']:,} rows of {self.work.rows:,}")
            self._keep(measured, "sy_first", first)
            self._keep(measured, "sy_again", again)
            self.versions["shipyard"] = first["version"]
        return (
            f"Shipyard first {first['seconds']:.2f} s ({first['rss_mib']:.0f} MiB; "
            f"process {first['process_seconds']:.2f} s), again {again['seconds'] * 1000:.1f} ms "
            f"(process {again['process_seconds']:.2f} s); imports alone {imports['rss_mib']:.0f} MiB"
        )

    def rounds(self, repeat: int, warmup: int = 1) -> None:
        """``warmup`` unmeasured rounds, then ``repeat`` measured; the order rotates each round."""
        turns = [self.sha256_turn, self.dvc_turn, self.shipyard_turn]
        for round_no in range(warmup + repeat):
            measured = round_no >= warmup
            shift = round_no % len(turns)
            label = f"round {round_no - warmup + 1}" if measured else "warm-up"
            for turn in turns[shift:] + turns[:shift]:
                print(f"[{label}] {turn(measured)}", flush=True)

    def breakdown(self, top: int) -> dict:
        """Timers around the steps of a first registration, and a cProfile of another."""
        with self._tmp("breakdown-") as tmp:
            folder = Path(tmp)
            file, copy = place(self.work.path, folder), place(self.work.path, folder, "copy.csv")
            warm_cache(self.work.path)
            steps = self.shipyard_worker(
                "breakdown", folder / "store", ["--file", str(file), "--file2", str(copy)]
            )
        with self._tmp("cprofile-") as tmp:
            folder = Path(tmp)
            file = place(self.work.path, folder)
            warm_cache(self.work.path)
            profile = self.shipyard_worker(
                "cprofile", folder / "store", ["--file", str(file), "--top", str(top)]
            )
        return {**steps, "cprofile": profile}


@dataclass(frozen=True)
class Row:
    """One line of the final table; ``value`` is the ratio as a number, for the JSON."""

    key: str
    title: str
    reference: str
    shipyard: str
    ratio: str
    value: float
    goal: str = "-"
    met: bool | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "key"}


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _versus(key: str, title: str, peer: float, ours: float) -> Row:
    """A row without a goal: DVC's median time against Shipyard's; value = peer / ours."""
    ratio = peer / ours
    text = f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    return Row(key, title, f"DVC {_s(peer)}", _s(ours), text, round(ratio, 3))


def table_rows(samples: dict[str, list[dict]]) -> list[Row]:
    """The final table's rows, from the medians of what the workers reported."""

    def med(key: str, field: str = "seconds") -> float:
        return _median(samples[key], field)

    sha, first, again = med("sha256"), med("sy_first"), med("sy_again")
    first_p, again_p = med("sy_first", "process_seconds"), med("sy_again", "process_seconds")
    dvc_first, dvc_again, dvc_status = med("dvc_first"), med("dvc_again"), med("dvc_status")
    over_sha = first / sha
    speedup, speedup_p = first / again, first_p / again_p
    speedup_goal = f">= {GOAL_AGAIN_SPEEDUP:g}x"
    rows = [
        Row(
            "a",
            "first registration / sha256 of the file",
            f"sha256 {_s(sha)}",
            _s(first),
            f"{over_sha:.2f}x sha256",
            round(over_sha, 3),
            f"<= {GOAL_FIRST_VS_SHA256:g}x",
            over_sha <= GOAL_FIRST_VS_SHA256,
        ),
        Row(
            "b",
            "unchanged re-registration vs first (call)",
            f"first {_s(first)}",
            _s(again),
            f"{speedup:,.0f}x faster",
            round(speedup, 1),
            speedup_goal,
            speedup >= GOAL_AGAIN_SPEEDUP,
        ),
        Row(
            "b'",
            "the same, process level (start + imports + open + call)",
            f"first {_s(first_p)}",
            _s(again_p),
            f"{speedup_p:,.1f}x faster",
            round(speedup_p, 2),
            speedup_goal,
            speedup_p >= GOAL_AGAIN_SPEEDUP,
        ),
        _versus("c", "first: vs dvc add (process)", dvc_first, first_p),
        _versus("c'", "first: vs dvc add (Shipyard call only)", dvc_first, first),
        _versus("d", "unchanged: vs dvc add again (process)", dvc_again, again_p),
        _versus("d'", "unchanged: vs dvc add again (call only)", dvc_again, again),
        _versus("e", "unchanged: vs dvc status (process)", dvc_status, again_p),
        _versus("e'", "unchanged: vs dvc status (call only)", dvc_status, again),
    ]
    for key, ours_key, peer_key, what in (
        ("f", "sy_first", "dvc_first", "first"),
        ("g", "sy_again", "dvc_again", "unchanged"),
    ):
        ours, peer = med(ours_key, "rss_mib"), med(peer_key, "rss_mib")
        rows.append(
            Row(
                key,
                f"peak RSS, {what}",
                f"DVC {peer:.0f} MiB",
                f"{ours:.0f} MiB",
                f"{ours / peer:.1f}x DVC's",
                round(ours / peer, 2),
            )
        )
    imports, sha_rss = med("sy_imports", "rss_mib"), med("sha256", "rss_mib")
    added = med("sy_first", "rss_mib") - imports
    rows.append(
        Row(
            "h",
            "peak RSS of a worker that only imports",
            f"sha256 worker {sha_rss:.0f} MiB",
            f"{imports:.0f} MiB",
            f"first adds {added:.0f} MiB",
            round(added, 1),
        )
    )
    return rows


def big_rows(big: dict) -> list[Row]:
    rss = big["rss_mib"]
    return [
        Row(
            "big",
            f"{big['gb']:.1f} GB CSV, first registration (streaming)",
            f"sha256 {_s(big['sha256_seconds'])}",
            f"{_s(big['seconds'])}, {rss:.0f} MiB peak",
            f"{big['rows_per_s'] / 1e6:.2f}M rows/s, {big['mb_per_s']:.0f} MB/s",
            rss,
            f"RSS < 1 GB ({GOAL_BIG_RSS_MIB:.0f} MiB)",
            rss < GOAL_BIG_RSS_MIB,
        )
    ]


def print_rows(rows: list[Row], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("case", "reference", "Shipyard", "ratio", "goal", "met"):
        table.add_column(column, justify="left" if column in ("case", "goal", "ratio") else "right")
    for row in rows:
        met = "-" if row.met is None else "yes" if row.met else "[bold red]no[/]"
        table.add_row(
            f"({row.key}) {row.title}", row.reference, row.shipyard, row.ratio, row.goal, met
        )
    console = Console()
    if not console.is_terminal:
        console.width = 140
    console.print(table)


def print_breakdown(breakdown: dict, sha256_rate: float) -> None:
    for key, what in (
        ("first", "first registration (no contract yet: none checked, one inferred)"),
        ("same_bytes_new_path", "same bytes under a new path (full pass + contract check, dedup)"),
    ):
        part = breakdown[key]
        print(
            f"\nbreakdown, {what}: {part['seconds']:.2f} s, Parquet {part['parquet_bytes'] / 1e6:.0f} MB"
        )
        for name, seconds, share in part["stages"]:
            print(f"  {seconds:7.2f} s  {share:6.1%}  {name}")
        print(
            f"  (sha256 alone of the Parquet bytes: about "
            f"{part['parquet_bytes'] / sha256_rate:.2f} s at the baseline's rate)"
        )
    profile = breakdown["cprofile"]
    print(
        f"\ncProfile of a first registration ({profile['seconds']:.2f} s under the profiler), top by own time:"
    )
    for where, calls, own, cumulative in profile["top_by_own_time"]:
        print(f"  {own:7.2f} s own  {cumulative:7.2f} s cum  {calls:>9}  {where}")


def run_big(bench: Bench, seed: int) -> dict:
    """The 5 GB streaming registration, once, in a fresh store."""
    work = work_file(bench.ours, BIG_GB, seed)
    need_disk(bench.tmp_root, int(work.bytes * 0.8), "the big registration's store")
    warm_cache(work.path)
    sha = run_worker(bench.ours, SCRIPT, ["--worker", "sha256", "--file", str(work.path)])
    with bench._tmp("big-") as tmp:
        store, file = Path(tmp) / "store", place(work.path, Path(tmp))
        bench.shipyard_worker("init-store", store, [])
        warm_cache(work.path)
        started = time.perf_counter()
        result = bench.shipyard_worker(
            "register", store, ["--file", str(file)], timeout=BIG_TIMEOUT
        )
        wall = time.perf_counter() - started
    if result["rows"] != work.rows:
        raise BenchError(f"registered {result['rows']:,} rows of {work.rows:,}")
    big = {
        "gb": round(work.bytes / 1e9, 3),
        "rows": work.rows,
        "seconds": round(result["seconds"], 2),
        "process_seconds": round(result["process_seconds"], 2),
        "worker_wall_seconds": round(wall, 2),
        "rss_mib": round(result["rss_mib"], 1),
        "rows_per_s": round(work.rows / result["seconds"]),
        "mb_per_s": round(work.bytes / 1e6 / result["seconds"], 1),
        "parquet_bytes": result["parquet_bytes"],
        "sha256_seconds": round(sha["seconds"], 3),
        "met": result["rss_mib"] < GOAL_BIG_RSS_MIB,
    }
    print(
        f"big: {big['seconds']:.1f} s, peak RSS {big['rss_mib']:.0f} MiB, "
        f"{big['rows_per_s'] / 1e6:.2f}M rows/s, {big['mb_per_s']:.0f} MB/s "
        f"(sha256 of the file: {big['sha256_seconds']:.2f} s)",
        flush=True,
    )
    return big


def dvc_python() -> Path:
    """The DVC environment's python (pinned; no fallback: the peer's figures need the pin)."""
    return ensure_venv(f"dvc-{DVC_PIN}", [f"dvc=={DVC_PIN}"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (the worker options are hidden)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--size-gb", type=float, default=1.0, help="size of the CSV (default 1)")
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    parser.add_argument(
        "--big", action="store_true", help=f"also register a {BIG_GB:g} GB CSV once"
    )
    parser.add_argument("--quick", action="store_true", help="a 0.05 GB CSV, for a smoke test")
    parser.add_argument("--top", type=int, default=12, help="cProfile rows to keep (default 12)")
    hidden = argparse.SUPPRESS
    parser.add_argument("--worker", choices=sorted(JOBS), help=hidden)
    parser.add_argument("--file", help=hidden)
    parser.add_argument("--file2", help=hidden)
    parser.add_argument("--repo", help=hidden)
    parser.add_argument("--dvc", choices=["add", "status"], help=hidden)
    parser.add_argument("--t0", type=float, default=0.0, help=hidden)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.quick:
        args.size_gb = 0.05
    return args


def run_parent(args: argparse.Namespace) -> None:
    """Run the benchmark: generate or reuse the CSV, measure, print, write JSON."""
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    python = dvc_python()
    ours = Side("Shipyard", Path(sys.executable))
    work = work_file(ours, args.size_gb, args.seed)
    # A DVC cache copy and a Parquet blob live at once, besides the CSV itself.
    need_disk(WORK_DIR, int(work.bytes * 2.5), "the measurements")
    bench = Bench(work, python)
    print(
        "page cache: warm (the file is read once, untimed, before each contender's turn; "
        "the OS cache is not dropped)",
        flush=True,
    )
    bench.rounds(args.repeat)
    rows = table_rows(bench.samples)
    sha256_rate = work.bytes / _median(bench.samples["sha256"], "seconds")
    print("measuring the breakdown of a first registration ...", flush=True)
    breakdown = bench.breakdown(args.top)
    print_breakdown(breakdown, sha256_rate)
    big = None
    if args.big:
        print(f"\nbig case: {BIG_GB:g} GB CSV ...", flush=True)
        big = run_big(bench, args.seed)
        rows += big_rows(big)
    elapsed = time.perf_counter() - started
    title = (
        f"Shipyard {bench.versions.get('shipyard')} vs DVC {bench.versions.get('dvc')}, "
        f"{work.bytes / 1e9:.2f} GB CSV ({work.rows:,} rows), median of {args.repeat}, "
        f"warm page cache, {elapsed:.0f} s"
    )
    print()
    print_rows(rows, title)

    def summary(key: str) -> dict:
        names = ("seconds", "process_seconds", "start_seconds", "import_seconds", "open_seconds")
        fields = [f for f in (*names, "rss_mib") if f in bench.samples[key][0]]
        return {
            **{f"{f}_median": round(_median(bench.samples[key], f), 4) for f in fields},
            "seconds_samples": [round(r["seconds"], 4) for r in bench.samples[key]],
        }

    path = write_json(
        "datasets",
        {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "dvc": bench.versions.get("dvc"),
            "shipyard": bench.versions.get("shipyard"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min": {"start": load_before, "end": os.getloadavg()[0]},
            "repeat": args.repeat,
            "page_cache": "warm: the file is read once before each contender's turn; not dropped",
            "work_file": {
                "bytes": work.bytes,
                "rows": work.rows,
                "seed": work.seed,
                "columns": work.columns,
            },
            "measurements": {key: summary(key) for key in sorted(bench.samples)},
            "table": {row.key: row.as_dict() for row in rows},
            "breakdown": breakdown,
            "big": big,
            "wall_s": round(elapsed, 1),
        },
    )
    print(f"results written to {path}; whole benchmark took {elapsed:.0f} s")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the parent by default, a worker with ``--worker``."""
    args = parse_args(argv)
    if args.worker:
        emit(JOBS[args.worker](args))
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
