"""Monitors: a deployment's prediction log, window by window, against a reference.

    import shipyard as sy
    sy.create_monitor("credit", "dataset:credit@3", window="1h", target="default")
    sy.run_monitor("credit")            # every complete window not evaluated yet
    table = sy.monitor_results("credit")

Reference and target
--------------------
The reference (``dataset:NAME@V``, ``dataset:NAME/V``, or ``dataset:NAME``
for the newest version, pinned when the monitor is created) is prepared once
(:func:`prepare_reference`) and stored as a blob; the monitor keeps its
digest, and every run verifies the bytes against it. Its columns are keyed
as the prediction log names them: ``inputs.<column>`` for the model's inputs
and ``prediction`` for the target.

The target is the reference column holding the true label: ``target=``
names it; without it, when ``columns=`` is given and exactly one reference
column is left over, that one is the target; otherwise the monitor has none.
Prediction drift compares the log's ``prediction`` column with the target's
distribution; a monitor without a target reports it as status
``no_reference``. Live performance needs no target: it reads the labels
posted for each prediction.

Columns
-------
``columns=`` names the model inputs to test (as the dataset names them); a
named column the log lacks gets status ``missing_column``. Without it, every
reference column other than the target that the window's log has as an input
is tested. ``tests=`` is one test name or a mapping column -> test (the
target's key is ``prediction``); ``thresholds=`` maps a column or a test name
to a threshold (a column's own wins). ``drift_share`` is the share of tested
input columns that drifted; the prediction is reported beside it.

Windows
-------
``window="1h"`` (s, m, h, d, w; at least a minute) cuts the log into windows
aligned to the epoch (UTC): window ``number`` covers ``[number * length,
(number + 1) * length)`` and is complete once its end has passed. Windows
without traffic between the first window with traffic and now are recorded
with zero rows, so silence shows. ``rows=5000`` cuts the log, in time order,
into windows of 5,000 rows, or a few more when predictions share the
millisecond at a window's end: a window never splits a millisecond, so it is
found again by its time range alone. A row window is complete once it has
its rows and its last millisecond has passed. Shadow predictions (``role``
"shadow") are never monitored.

A run evaluates only windows after the last one evaluated and reads only the
log from there on, so it costs the new rows. A run stops after
:data:`MAX_WINDOWS_PER_RUN` windows and says so; the next run goes on.

Live performance
----------------
A window's labelled rows give its metrics (scikit-learn's, on those rows):
``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` and ``log_loss``
for a classifier (binary averaging when the classes are 0/1 or booleans,
macro averaging otherwise; ROC AUC and log loss from ``probabilities``, taken
in the sorted order of the classes, as scikit-learn orders ``classes_``), and
``mae``, ``rmse`` and ``r2`` for a regressor. A metric that cannot be computed
(one class only, too few rows) is left out. Whether the model classifies is
learnt from the target (strings, booleans or at most
:data:`MAX_CLASSES` distinct integers), else from the first labelled window
(probabilities logged, or labels as above), and stored with the monitor.
Labels arrive late: a run also finds the windows that received labels since
the previous run and, when a window's labelled count grew, computes its
metrics again (its drift results stay).

Where it runs
-------------
The computation runs where ``run_monitor`` is called, reading the prediction
log from the local ``SHIPYARD_HOME`` (the serving machine's disk) and its
compacted files from ``SHIPYARD_ARTIFACTS``; only the monitor's definition,
reference blob, windows and results travel to the store, which may be a
Shipyard server (``SHIPYARD_URI=http://...``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidInput
from shipyard.monitoring import _api, _registry
from shipyard.monitoring._column import Column
from shipyard.monitoring._reference import Reference, _check_known, prepare_reference

if TYPE_CHECKING:
    from shipyard.blobs import BlobStore
    from shipyard.store.monitors import Monitor, MonitorWindow, WindowResult
    from shipyard.tracking import Client

__all__ = ["MonitorRun", "create_monitor", "monitor_results", "run_monitor"]

INPUT_PREFIX = "inputs."
PREDICTION = "prediction"
_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_WINDOW = re.compile(r"(?P<count>\d+)\s*(?P<unit>[smhdw])")
MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 366 * 86_400
MAX_WINDOW_ROWS = 10_000_000
#: Windows one run evaluates at most (empty time windows included); the next run goes on.
MAX_WINDOWS_PER_RUN = 1_000
#: A numeric target with at most this many distinct whole values is a class label.
MAX_CLASSES = 20
_REFERENCE = re.compile(r"dataset:(?P<name>[^@/\s]+)(?:[@/](?P<version>\d+))?")
_CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
_REGRESSION_METRICS = ("mae", "rmse", "r2")


@dataclasses.dataclass(frozen=True)
class MonitorRun:
    """What one :func:`run_monitor` did: windows evaluated for the first time, windows whose
    metrics were computed again (more labels), alerts opened or closed, and whether it
    got to ``now`` (False: it stopped at :data:`MAX_WINDOWS_PER_RUN`; run again)."""

    monitor: Monitor
    evaluated: tuple[MonitorWindow, ...]
    rescored: tuple[MonitorWindow, ...]
    alerts: tuple[Any, ...]
    complete: bool

    @property
    def nothing_new(self) -> bool:
        return not self.evaluated and not self.rescored

    def summary(self) -> str:
        """One line: what was evaluated, or that there was nothing new."""
        if self.nothing_new:
            last = self.monitor.last_window
            where = "no window evaluated yet" if last is None else f"last window #{last}"
            return f"{self.monitor.name}: nothing new to evaluate ({where})"
        parts = []
        if self.evaluated:
            drifted = sum(1 for w in self.evaluated if _drifted_columns(w))
            parts.append(f"{len(self.evaluated)} new window(s), {drifted} with drift")
        if self.rescored:
            parts.append(f"{len(self.rescored)} re-scored with new labels")
        if self.alerts:
            parts.append(f"{len(self.alerts)} alert(s) opened or closed")
        more = "" if self.complete else "; more windows are due, run again"
        return f"{self.monitor.name}: {', '.join(parts)}{more}"


# ------------------------------------------------------------------------ creating


def create_monitor(
    deployment: str,
    reference: str,
    *,
    name: str | None = None,
    window: str | None = None,
    rows: int | None = None,
    columns: Iterable[str] | None = None,
    target: str | None = None,
    tests: str | Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    client: Client | None = None,
) -> Monitor:
    """Watch ``deployment``'s predictions against ``reference`` (see the module docstring).

    ``name``: the monitor's name (default: the deployment's). Exactly one of
    ``window`` ("15m", "1h", "1d") and ``rows`` (a row count) cuts the windows.
    """
    client = _client(client)
    deployment = _check_name("deployment", deployment)
    name = _check_name("monitor", deployment if name is None else name)
    window_seconds, window_rows = parse_window(window, rows)
    dataset, version = _parse_reference(reference)
    found = client.get_dataset_version(dataset, version)
    reference_text = f"dataset:{found.name}@{found.version}"
    wanted = _api._column_names(columns)
    if target is not None and not isinstance(target, str):
        raise InvalidInput(f"target must be a column name; got {target!r}.")
    # Without a target, the column left over may be it: then every column is read.
    read = None if wanted is None or target is None else [*wanted, target]
    full = prepare_reference(reference_text, read, client=client)
    _check_known(wanted or [], full.names, reference_text)
    target = _target(full, wanted, target, reference_text)
    inputs = wanted or [n for n in full.names if n != target]
    prepared = _log_reference(full, inputs, target)
    choice = _tests(tests, inputs, prepared)
    limits = _thresholds(thresholds, inputs)
    task = None if target is None else _task_of_column(full.columns[target])
    digest = client._put_monitor_reference(prepared.to_bytes())
    return client._create_monitor(
        name=name,
        deployment=deployment,
        reference=reference_text,
        reference_digest=digest,
        window_seconds=window_seconds,
        window_rows=window_rows,
        columns=wanted,
        tests=choice,
        thresholds=limits,
        task=task,
    )


def _client(client: Client | None) -> Client:
    from shipyard.data._api import _client_and_run

    return _client_and_run(client)[0]


def _check_name(kind: str, value: Any) -> str:
    from shipyard.models import _uri

    try:
        return _uri.check_name(value)
    except InvalidInput:
        raise InvalidInput(
            f"A {kind} name is 1 to 128 letters, digits, '.', '_' or '-', starting with a letter "
            f"or digit; got {value!r}.",
            hint="Use a name such as 'credit'.",
        ) from None


def parse_window(window: Any, rows: Any) -> tuple[int | None, int | None]:
    """(seconds, None) for ``window="1h"``, (None, rows) for ``rows=5000``; exactly one."""
    if (window is None) == (rows is None):
        raise InvalidInput(
            "A monitor needs exactly one of window (e.g. '1h') and rows (e.g. 5000); got "
            f"{'both' if window is not None else 'neither'}.",
            hint="Pass window='1h' to cut the log by time, or rows=5000 to cut it by row count.",
        )
    if rows is not None:
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= MAX_WINDOW_ROWS:
            raise InvalidInput(
                f"rows must be a whole number from 1 to {MAX_WINDOW_ROWS:,}; got {rows!r}.",
                hint="Pass e.g. rows=5000.",
            )
        return None, rows
    match = _WINDOW.fullmatch(window.strip().lower()) if isinstance(window, str) else None
    seconds = int(match["count"]) * _UNITS[match["unit"]] if match else 0
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        raise InvalidInput(
            f"window must be a length from 1m to 366d such as '15m', '1h' or '1d' "
            f"(units s, m, h, d, w); got {window!r}.",
            hint="Pass e.g. window='1h'.",
        )
    return seconds, None


def _parse_reference(reference: Any) -> tuple[str, int | None]:
    from shipyard.data._api import parse_ref

    match = _REFERENCE.fullmatch(reference.strip()) if isinstance(reference, str) else None
    if match is None:
        raise InvalidInput(
            f"A monitor's reference is a dataset version such as 'dataset:credit@3'; "
            f"got {reference!r}.",
            hint="Write dataset:NAME@VERSION (or dataset:NAME/VERSION, or dataset:NAME for the "
            "newest version); list datasets with `shipyard data list`.",
        )
    version = match["version"]
    return parse_ref(match["name"])[0], None if version is None else int(version)


def _target(
    full: Reference, wanted: list[str] | None, target: str | None, where: str
) -> str | None:
    if target is None:
        if wanted is None:
            return None
        left = [n for n in full.names if n not in wanted]
        return left[0] if len(left) == 1 else None
    if wanted is not None and target in wanted:
        raise InvalidInput(
            f"Column {target!r} is both the target and a monitored input.",
            hint="Leave the target out of columns.",
        )
    if target not in full.columns:
        why = "of a type no test reads" if target in full.skipped else "not in it"
        raise InvalidInput(
            f"The target {target!r} is {why} ({where} has {full.names}).",
            hint="Name the reference column that holds the true label, or leave target out.",
        )
    return target


def _log_reference(full: Reference, inputs: list[str], target: str | None) -> Reference:
    """The reference keyed as the prediction log names its columns."""
    columns = {
        INPUT_PREFIX + n: dataclasses.replace(full.columns[n], name=INPUT_PREFIX + n)
        for n in inputs
        if n in full.columns
    }
    if target is not None:
        columns[PREDICTION] = dataclasses.replace(full.columns[target], name=PREDICTION)
    skipped = {INPUT_PREFIX + n: full.skipped[n] for n in inputs if n in full.skipped}
    return Reference(rows=full.rows, columns=columns, skipped=skipped)


def _log_name(column: str) -> str:
    return column if column == PREDICTION else INPUT_PREFIX + column


def _tests(
    tests: str | Mapping[str, str] | None, inputs: list[str], prepared: Reference
) -> str | dict[str, str] | None:
    if tests is None:
        return None
    choice = _api._test_choice(tests)
    keys = [*inputs, PREDICTION] if PREDICTION in prepared.columns else inputs
    if isinstance(choice, dict):
        unknown = [c for c in choice if c not in keys]
        if unknown:
            raise InvalidInput(
                f"tests names column(s) {unknown} the monitor does not test; it tests {keys}.",
                hint="Name monitored input columns, or 'prediction' for the prediction.",
            )
        _api._plan(
            prepared, [_log_name(c) for c in keys], {_log_name(c): t for c, t in choice.items()}
        )
        return dict(sorted(choice.items()))
    _api._plan(prepared, [_log_name(c) for c in keys], choice)
    return choice


def _thresholds(
    thresholds: Mapping[str, float] | None, inputs: list[str]
) -> dict[str, float] | None:
    if thresholds is None:
        return None
    if not isinstance(thresholds, Mapping):
        raise InvalidInput(
            f"thresholds must be a mapping column or test -> number; got {thresholds!r}.",
            hint="Pass e.g. {'psi': 0.2, 'income': 0.05}.",
        )
    keys = {*inputs, PREDICTION, *_registry.available_tests()}
    out: dict[str, float] = {}
    for key, value in thresholds.items():
        if key not in keys:
            raise InvalidInput(
                f"A threshold names {key!r}, which is neither a monitored column nor a drift test.",
                hint=f"Name one of {sorted(keys)}.",
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise InvalidInput(
                f"The threshold for {key!r} must be a finite number >= 0; got {value!r}."
            )
        out[key] = float(value)
    return dict(sorted(out.items()))


def _task_of_column(column: Column) -> str | None:
    if column.count == 0:
        return None  # learnt from the labels instead
    if column.kind == "categorical":
        return "classification"
    values = column.values
    whole = bool(np.all(values == np.round(values)))
    return "classification" if whole and len(np.unique(values)) <= MAX_CLASSES else "regression"


# ------------------------------------------------------------------------- running


def run_monitor(name: str, *, client: Client | None = None, now: Any = None) -> MonitorRun:
    """Evaluate every complete window of monitor ``name`` not evaluated yet, and re-score
    windows whose labels grew; store them, then evaluate the monitor's alert rules.

    ``now`` (a datetime, naive meaning UTC, or ms since the epoch; default: the
    clock) decides which windows are complete. Idempotent: with nothing new it
    stores nothing (see :attr:`MonitorRun.nothing_new`).
    """
    client = _client(client)
    monitor = client.get_monitor(_check_name("monitor", name))
    now_ms = _to_ms(now, "now") if now is not None else _clock()
    # Labels stored from here on are looked at by the next run, so none falls between runs.
    checkpoint = _clock()
    if monitor.reference_digest is None:
        raise InvalidInput(
            f"Monitor {monitor.name!r} has no prepared reference.",
            hint=f"Delete it (`shipyard monitors delete {monitor.name}`) and create it again.",
        )
    reference = Reference.from_bytes(client._monitor_reference(monitor))
    log = _Log(client, monitor.deployment)
    if monitor.window_rows is not None:
        cut, complete = _row_windows(monitor, log, now_ms)
    else:
        cut, complete = _time_windows(monitor, log, now_ms)
    task = monitor.task
    if task is None:
        task = _task_of_windows([table for *_, table in cut])
        if task is not None:
            monitor = client._set_monitor_task(monitor.name, task)
    evaluated = [
        _evaluate(monitor, reference, number, start, end, table, task, checkpoint)
        for number, start, end, table in cut
    ]
    rescored = _rescore(client, monitor, log, task, checkpoint)
    alerts: list[Any] = []
    if evaluated or rescored:
        # Re-scored first: if a remote store takes the batches and one fails, the windows
        # not stored are evaluated by the next run, labels and all.
        client._record_monitor_windows(monitor.name, [*rescored, *evaluated])
        alerts = client._evaluate_monitor_alerts(monitor)
    return MonitorRun(monitor, tuple(evaluated), tuple(rescored), tuple(alerts), complete)


def _clock() -> int:
    return time.time_ns() // 1_000_000


def _to_ms(value: Any, what: str) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidInput(
        f"{what} must be a datetime or milliseconds since the epoch; got {value!r}.",
        hint="Pass e.g. datetime.now(UTC) - timedelta(days=1).",
    )


class _Log:
    """The deployment's prediction log on this machine (SHIPYARD_HOME and SHIPYARD_ARTIFACTS),
    also when the store is a Shipyard server."""

    def __init__(self, client: Client, deployment: str) -> None:
        from shipyard.serving import _log

        self._log = _log
        self.deployment = deployment
        self.folder: Path = _log.log_folder(client.settings.home, deployment)
        self.blobs = _local_blobs(client)

    def read(self, start: int | None = None, end: int | None = None) -> pa.Table:
        """Answered predictions in ``[start, end)`` by time, labels joined (the log leaves
        the shadow's rows out)."""
        return self._log.read(self.folder, self.blobs, self.deployment, start=start, end=end)

    def labelled_since(self, since: int | None) -> list[int]:
        """Prediction times (ms) of the labels stored at or after ``since``."""
        labels = self._log.stored_labels(self.folder, self.blobs)
        return [
            int(pid[:12], 16)
            for pid, (_, stored) in labels.items()
            if since is None or stored >= since
        ]


def _local_blobs(client: Client) -> BlobStore:
    from shipyard.tracking._client import is_server_uri

    if not is_server_uri(client.settings.uri):
        return client.blobs
    from shipyard.blobs import open_blob_store

    return open_blob_store(
        client.settings.artifacts, s3_endpoint_url=client.settings.s3_endpoint_url
    )


def _times(table: pa.Table) -> np.ndarray:
    return pc.cast(table.column("time"), pa.int64()).to_numpy(zero_copy_only=False)


Cut = tuple[int, int, int, pa.Table]  # number, start, end, rows


def _time_windows(monitor: Monitor, log: _Log, now_ms: int) -> tuple[list[Cut], bool]:
    length = (monitor.window_seconds or 0) * 1000
    due = now_ms // length  # windows numbered below this are complete
    first = None if monitor.last_window is None else monitor.last_window + 1
    if first is not None and first >= due:
        return [], True
    last = due if first is None else min(due, first + MAX_WINDOWS_PER_RUN)
    table = log.read(None if first is None else first * length, last * length)
    times = _times(table)
    if first is None:
        if not len(times):
            return [], True
        first = int(times[0]) // length
        last = min(due, first + MAX_WINDOWS_PER_RUN)
    cuts = []
    for number in range(first, last):
        lo, hi = np.searchsorted(times, [number * length, (number + 1) * length], side="left")
        cuts.append((number, number * length, (number + 1) * length, table.slice(lo, hi - lo)))
    return cuts, last == due


def _row_windows(monitor: Monitor, log: _Log, now_ms: int) -> tuple[list[Cut], bool]:
    size = monitor.window_rows or 0
    table = log.read(monitor.last_end)
    times = _times(table)
    number = (monitor.last_window or 0) + 1
    at, cuts = 0, []
    while at + size <= len(times) and len(cuts) < MAX_WINDOWS_PER_RUN:
        last_ms = int(times[at + size - 1])
        if last_ms >= now_ms:  # rows of this millisecond may still come
            break
        stop = int(np.searchsorted(times, last_ms, side="right"))
        cuts.append((number, int(times[at]), last_ms + 1, table.slice(at, stop - at)))
        number, at = number + 1, stop
    return cuts, len(cuts) < MAX_WINDOWS_PER_RUN or at + size > len(times)


def _labelled(table: pa.Table) -> pa.Table:
    if "label" not in table.column_names or not table.num_rows:
        return table.slice(0, 0)
    return table.filter(pc.is_valid(table.column("label")))


def _task_of_windows(tables: Sequence[pa.Table]) -> str | None:
    """Classification or regression, from the first window with labels (None: no labels yet)."""
    for table in tables:
        labelled = _labelled(table)
        if not labelled.num_rows:
            continue
        if labelled.column("probabilities").null_count < labelled.num_rows:
            return "classification"
        values = labelled.column("label").to_pylist()
        if any(isinstance(v, str | bool) for v in values):
            return "classification"
        numbers = np.asarray(values, dtype=float)
        whole = bool(np.all(numbers == np.round(numbers)))
        return (
            "classification" if whole and len(np.unique(numbers)) <= MAX_CLASSES else "regression"
        )
    return None


def _evaluate(
    monitor: Monitor,
    reference: Reference,
    number: int,
    start: int,
    end: int,
    table: pa.Table,
    task: str | None,
    evaluated_at: int,
) -> MonitorWindow:
    from shipyard.store.monitors import MonitorWindow

    results = _drift(monitor, reference, table)
    tested = [r for r in results if r.kind == "input" and r.statistic is not None]
    drift_share = sum(bool(r.drift) for r in tested) / len(tested) if tested else None
    labelled = _labelled(table)
    return MonitorWindow(
        number=number,
        start=start,
        end=end,
        rows=table.num_rows,
        labelled=labelled.num_rows,
        drift_share=drift_share,
        metrics=_performance(labelled, task),
        evaluated_at=evaluated_at,
        results=tuple(sorted(results, key=lambda r: (r.kind, r.column))),  # as stored
    )


def _drift(monitor: Monitor, reference: Reference, table: pa.Table) -> list[WindowResult]:
    from shipyard.store.monitors import WindowResult

    logged = {
        c.removeprefix(INPUT_PREFIX) for c in table.column_names if c.startswith(INPUT_PREFIX)
    }
    if monitor.columns is not None:
        inputs = list(monitor.columns)
    else:
        known = [n.removeprefix(INPUT_PREFIX) for n in reference.names if n != PREDICTION]
        inputs = [n for n in known if n in logged]
    names = [INPUT_PREFIX + n for n in inputs]
    has_target = PREDICTION in reference.columns
    if has_target:
        names.append(PREDICTION)
    present = [n for n in names if n in table.column_names]
    current = pa.table({n: _typed(table.column(n), reference, n) for n in present})
    tests = monitor.tests
    if isinstance(tests, dict):
        tests = {_log_name(c): t for c, t in tests.items()}
    results = []
    if names:
        report = _api.compare(reference, current, names, tests)
        results = [_result(monitor, name, report.columns[name]) for name in names]
    if not has_target:
        results.append(
            WindowResult("prediction", PREDICTION, "", None, None, None, None, "no_reference")
        )
    return results


def _typed(column: pa.ChunkedArray, reference: Reference, name: str) -> pa.ChunkedArray:
    """A column of nulls only (its log type is null) typed as the reference's, so it is
    reported ``all_null`` rather than ``type_mismatch``."""
    if not pa.types.is_null(column.type) or name not in reference.columns:
        return column
    kind = reference.columns[name].kind
    return column.cast(pa.float64() if kind == "numeric" else pa.string())


def _result(monitor: Monitor, name: str, found: Any) -> WindowResult:
    """A report column as a stored result, with the monitor's thresholds applied."""
    from shipyard.store.monitors import WindowResult

    column = name.removeprefix(INPUT_PREFIX)
    kind = "prediction" if name == PREDICTION else "input"
    limits = monitor.thresholds or {}
    threshold = limits.get(column, limits.get(found.test or "", found.threshold))
    drift = found.drift
    if found.statistic is not None and found.test is not None:
        test = _registry.get_test(found.test)
        drift = test.drifted(found.statistic, found.p_value, threshold)
    return WindowResult(
        kind,
        column,
        found.test or "",
        _finite(found.statistic),
        _finite(found.p_value),
        threshold,
        drift if found.statistic is not None else None,
        found.status,
    )


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


# ---------------------------------------------------------------- live performance


def _performance(labelled: pa.Table, task: str | None) -> dict[str, float]:
    """Live performance on a window's labelled rows (see the module docstring)."""
    if not labelled.num_rows or task is None:
        return {}
    y_true = labelled.column("label").to_pylist()
    y_pred = labelled.column("prediction").to_pylist()
    if task == "regression":
        return _regression(y_true, y_pred)
    probabilities = labelled.column("probabilities").to_pylist()
    return _classification(y_true, y_pred, probabilities)


def _regression(y_true: list[Any], y_pred: list[Any]) -> dict[str, float]:
    from sklearn import metrics

    try:
        truth = np.asarray(y_true, dtype=float)
        predicted = np.asarray(y_pred, dtype=float)
    except (TypeError, ValueError):
        return {}
    out = {
        "mae": metrics.mean_absolute_error(truth, predicted),
        "rmse": math.sqrt(metrics.mean_squared_error(truth, predicted)),
    }
    if len(truth) >= 2 and np.ptp(truth) > 0:
        out["r2"] = metrics.r2_score(truth, predicted)
    return _clean(out)


def _classification(
    y_true: list[Any], y_pred: list[Any], probabilities: list[Any]
) -> dict[str, float]:
    from sklearn import metrics

    try:
        classes = sorted({*y_true, *y_pred})
    except TypeError:  # labels and predictions of types that do not compare
        return {}
    binary = set(classes) <= {0, 1}
    average = "binary" if binary else "macro"
    out: dict[str, float] = {}
    try:
        out["accuracy"] = metrics.accuracy_score(y_true, y_pred)
        for metric, scorer in (
            ("precision", metrics.precision_score),
            ("recall", metrics.recall_score),
            ("f1", metrics.f1_score),
        ):
            out[metric] = scorer(y_true, y_pred, average=average, zero_division=0)
    except ValueError:  # e.g. a mix of strings and numbers
        return {}
    if any(p is None for p in probabilities):
        return _clean(out)
    proba = np.asarray(probabilities, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        return _clean(out)
    # Probabilities computed in float32 (an ONNX runtime) sum to 1 only within ~1e-7;
    # log loss wants them exact, and rescaling changes no ranking (ROC AUC).
    totals = proba.sum(axis=1, keepdims=True)
    if np.all(totals > 0):
        proba = proba / totals
    model_classes = classes if proba.shape[1] == len(classes) else None
    if binary and proba.shape[1] == 2:
        model_classes = [0, 1]
    if model_classes is None or len(set(y_true)) < 2 or not set(y_true) <= set(model_classes):
        return _clean(out)
    try:
        if proba.shape[1] == 2:
            positive = [v == model_classes[1] for v in y_true]
            out["roc_auc"] = metrics.roc_auc_score(positive, proba[:, 1])
        else:
            out["roc_auc"] = metrics.roc_auc_score(
                y_true, proba, multi_class="ovr", labels=model_classes
            )
        out["log_loss"] = metrics.log_loss(y_true, proba, labels=model_classes)
    except ValueError:
        pass
    return _clean(out)


def _clean(values: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if math.isfinite(float(v))}


def _rescore(
    client: Client, monitor: Monitor, log: _Log, task: str | None, checkpoint: int
) -> list[MonitorWindow]:
    """Windows stored earlier whose labelled rows grew since the last run, with new metrics
    (the task is learnt and stored here when these labels are the monitor's first)."""
    if monitor.last_window is None:
        return []
    times = log.labelled_since(monitor.checked_at)
    if not times:
        return []
    stored = client.monitor_windows(monitor.name, start=min(times), results=True)
    marks = np.sort(np.asarray(times, dtype=np.int64))
    out = []
    for window in stored:
        lo, hi = np.searchsorted(marks, [window.start, window.end], side="left")
        if window.labelled >= window.rows or hi == lo:
            continue
        labelled = _labelled(log.read(window.start, window.end))
        if labelled.num_rows <= window.labelled:
            continue
        if task is None:
            task = _task_of_windows([labelled])
            assert task is not None
            client._set_monitor_task(monitor.name, task)
        out.append(
            dataclasses.replace(
                window,
                labelled=labelled.num_rows,
                metrics=_performance(labelled, task),
                evaluated_at=checkpoint,
            )
        )
    return out


def _drifted_columns(window: MonitorWindow) -> list[str]:
    return [r.column for r in window.results if r.drift]


# ------------------------------------------------------------------------- reading


def monitor_results(
    name: str, *, start: Any = None, end: Any = None, client: Client | None = None
) -> pa.Table:
    """The monitor's stored results as one Arrow table: a row per window and column.

    Columns: ``window`` (number), ``start`` and ``end`` (timestamps, UTC),
    ``rows``, ``labelled``, ``drift_share``, then per column ``kind`` ("input"
    or "prediction"), ``column``, ``test``, ``statistic``, ``p_value``,
    ``threshold``, ``drift`` and ``status``, then one float column per live
    performance metric (the window's value, repeated on each of its rows; null
    where the window had no labels). A window without results has one row with
    null column fields. Windows overlapping ``[start, end)`` (datetimes or ms).
    Pivot it, e.g. ``table.to_pandas().pivot(index="start", columns="column",
    values="statistic")``, or take one row per window with
    ``table.filter(pc.equal(table["kind"], "prediction"))``.
    """
    client = _client(client)
    windows = client.monitor_windows(
        _check_name("monitor", name),
        start=None if start is None else _to_ms(start, "start"),
        end=None if end is None else _to_ms(end, "end"),
        results=True,
    )
    fields: dict[str, list[Any]] = {
        "window": [],
        "start": [],
        "end": [],
        "rows": [],
        "labelled": [],
        "drift_share": [],
        "kind": [],
        "column": [],
        "test": [],
        "statistic": [],
        "p_value": [],
        "threshold": [],
        "drift": [],
        "status": [],
    }
    metric_names = sorted(
        {m for w in windows for m in w.metrics},
        key=lambda m: (_METRIC_ORDER.get(m, len(_METRIC_ORDER)), m),
    )
    metrics: dict[str, list[float | None]] = {m: [] for m in metric_names}
    for window in windows:
        for result in window.results or (None,):
            fields["window"].append(window.number)
            fields["start"].append(window.start)
            fields["end"].append(window.end)
            fields["rows"].append(window.rows)
            fields["labelled"].append(window.labelled)
            fields["drift_share"].append(window.drift_share)
            for key in (
                "kind",
                "column",
                "test",
                "statistic",
                "p_value",
                "threshold",
                "drift",
                "status",
            ):
                value = None if result is None else getattr(result, key)
                fields[key].append(None if key == "test" and value == "" else value)
            for metric in metric_names:
                metrics[metric].append(window.metrics.get(metric))
    stamp = pa.timestamp("ms", tz="UTC")
    types = {
        "window": pa.int64(),
        "start": stamp,
        "end": stamp,
        "rows": pa.int64(),
        "labelled": pa.int64(),
        "drift_share": pa.float64(),
        "kind": pa.string(),
        "column": pa.string(),
        "test": pa.string(),
        "statistic": pa.float64(),
        "p_value": pa.float64(),
        "threshold": pa.float64(),
        "drift": pa.bool_(),
        "status": pa.string(),
    }
    columns = {key: pa.array(values, types[key]) for key, values in fields.items()}
    columns.update({m: pa.array(v, pa.float64()) for m, v in metrics.items()})
    return pa.table(columns)


_METRIC_ORDER = {m: i for i, m in enumerate((*_CLASSIFICATION_METRICS, *_REGRESSION_METRICS))}


def describe_window(window: MonitorWindow) -> str:
    """One line about a window, for the command line: rows, drift, metrics."""
    drifted = _drifted_columns(window)
    share = "-" if window.drift_share is None else f"{window.drift_share:.2f}"
    start = dt.datetime.fromtimestamp(window.start / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = f"#{window.number} from {start} UTC: {window.rows:,} rows, drift share {share}"
    if drifted:
        text += f", drift in {', '.join(drifted)}"
    if window.metrics:
        text += ", " + ", ".join(f"{k} {v:.3g}" for k, v in window.metrics.items())
    return text
