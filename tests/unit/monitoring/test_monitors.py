"""Monitors: definitions, windows cut from a synthetic prediction log, drift, live performance,
incremental runs, late labels, and the results table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pytest
from sklearn import metrics

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, IntegrityError, InvalidInput, NotFound
from shipyard.monitoring import create_monitor, monitor_results, run_monitor
from shipyard.serving import _log, log_labels, predictions

HOUR = 3_600_000
T0 = 1_790_000_000_000 // HOUR * HOUR
FIRST = T0 // HOUR  # the number of the hour window starting at T0


def make_client(store_uri: str, root: Path) -> sy.Client:
    return sy.Client(
        settings=Settings.load(
            uri=store_uri, artifacts=str(root / "blobs"), home=str(root / "home")
        )
    )


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    """A store holding dataset ``credit`` v1: income ~ N(5, 1), age, and target ``default``."""
    return with_dataset(make_client(store_uri, tmp_path))


@pytest.fixture
def sqlite_client(tmp_path: Path) -> sy.Client:
    """``client`` on SQLite only, for what does not depend on the metadata store."""
    return with_dataset(make_client(f"sqlite:///{tmp_path / 'shipyard.db'}", tmp_path))


def with_dataset(found: sy.Client) -> sy.Client:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(5, 1, 400), "age": rng.integers(18, 90, 400)})
    frame["default"] = (frame["income"] > 5).astype(int)
    sy.data.register_dataset("credit", frame, client=found)
    return found


def write(
    client: sy.Client,
    start: int,
    rows: int,
    *,
    shift: float = 0.0,
    step: int = 1000,
    seed: int = 1,
    deployment: str = "credit",
) -> None:
    """``rows`` predictions from ``start``, one record per ``step`` ms, ten rows a record."""
    rng = np.random.default_rng(seed)
    log = _log.PredictionLog(_log.log_folder(client.settings.home, deployment), sync=False)
    records = []
    for at in range(0, rows, 10):
        n = min(10, rows - at)
        t = start + (at // 10) * step
        income = rng.normal(5 + shift, 1, n)
        p = 1 / (1 + np.exp(-(income - 5)))
        records.append(
            {
                "k": "p",
                "t": t,
                "v": "models:/credit/1",
                "ids": _log.new_ids(n, t),
                "in": {"income": income.tolist(), "age": rng.integers(18, 90, n).tolist()},
                "out": (p > 0.5).astype(int).tolist(),
                "proba": [[1 - x, x] for x in p],
                "ms": 1.0,
            }
        )
    log.append_sync(records)
    log.close()


def label(client: sy.Client, ids: Sequence[str], rule: Any = lambda i: i % 3 == 0) -> None:
    log_labels(
        "credit",
        [{"prediction_id": pid, "label": int(rule(i))} for i, pid in enumerate(ids)],
        client=client,
    )


def drifted(window: Any) -> list[str]:
    return sorted(r.column for r in window.results if r.drift)


# ------------------------------------------------------------------------ definitions


def test_create_get_list_and_delete(client: sy.Client) -> None:
    made = create_monitor(
        "credit", "dataset:credit/1", window="1h", target="default", client=client
    )
    assert (made.name, made.deployment, made.reference) == ("credit", "credit", "dataset:credit@1")
    assert (made.window_seconds, made.window_rows, made.window) == (3600, None, "1h")
    assert made.task == "classification"  # a 0/1 target
    assert client.get_monitor("credit") == made
    other = create_monitor(
        "credit", "dataset:credit", name="credit-rows", rows=500, columns=["income"], client=client
    )
    assert other.reference == "dataset:credit@1"  # the newest version, pinned
    assert other.columns == ("income",)
    assert [m.name for m in client.list_monitors()] == ["credit", "credit-rows"]
    assert client.list_monitors("elsewhere") == []
    with pytest.raises(AlreadyExists, match="monitors delete credit"):
        create_monitor("credit", "dataset:credit@1", window="1h", client=client)
    assert client.delete_monitor("credit-rows").name == "credit-rows"
    with pytest.raises(NotFound, match="monitors list"):
        client.get_monitor("credit-rows")
    actions = [e.action for e in client.audit_events() if e.object_type == "monitor"]
    assert actions == ["monitor.create", "monitor.create", "monitor.delete"]


def test_a_deployment_without_a_stored_definition_may_be_monitored(
    sqlite_client: sy.Client,
) -> None:
    client = sqlite_client
    assert create_monitor("not-served-yet", "dataset:credit@1", rows=10, client=client).windows == 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"window": "1x"}, "window must be a length"),
        ({"window": "30s"}, "window must be a length"),
        ({"window": 3600}, "window must be a length"),
        ({"window": "1h", "rows": 10}, "got both"),
        ({}, "got neither"),
        ({"rows": 0}, "rows must be a whole number"),
        ({"rows": True}, "rows must be a whole number"),
        ({"rows": 10, "reference": "credit@1"}, "dataset:credit@3"),
        ({"rows": 10, "reference": "dataset:credit@x"}, "dataset:credit@3"),
        ({"rows": 10, "name": "two words"}, "monitor name"),
        ({"rows": 10, "deployment": "../x"}, "deployment name"),
        ({"rows": 10, "target": "nope"}, "target 'nope' is not in it"),
        ({"rows": 10, "columns": ["nope"]}, r"\['nope'\] are not in the reference"),
        ({"rows": 10, "columns": ["income"], "target": "income"}, "both the target"),
        ({"rows": 10, "tests": "fancy"}, "Unknown drift test"),
        ({"rows": 10, "tests": {"nope": "ks"}}, "does not test"),
        ({"rows": 10, "tests": {"income": "chi_square"}}, "reads categorical"),
        ({"rows": 10, "thresholds": {"nope": 1}}, "neither a monitored column"),
        ({"rows": 10, "thresholds": {"ks": -1}}, "finite number >= 0"),
        ({"rows": 10, "thresholds": {"ks": float("nan")}}, "finite number >= 0"),
    ],
)
def test_bad_definitions_are_refused(
    sqlite_client: sy.Client, options: dict[str, Any], match: str
) -> None:
    client = sqlite_client
    arguments = {"deployment": "credit", "reference": "dataset:credit@1", **options}
    with pytest.raises(InvalidInput, match=match):
        create_monitor(
            arguments.pop("deployment"), arguments.pop("reference"), **arguments, client=client
        )
    assert client.list_monitors() == []


def test_an_unknown_dataset_is_not_found(client: sy.Client) -> None:
    with pytest.raises(NotFound):
        create_monitor("credit", "dataset:missing@1", window="1h", client=client)
    with pytest.raises(NotFound):
        create_monitor("credit", "dataset:credit@7", window="1h", client=client)


def test_a_damaged_reference_blob_is_refused(sqlite_client: sy.Client) -> None:
    client = sqlite_client
    made = create_monitor("credit", "dataset:credit@1", window="1h", client=client)
    assert made.reference_digest is not None
    path = next(
        p
        for p in (Path(client.settings.artifacts)).rglob("*")
        if made.reference_digest[7:] in p.name
    )
    path.chmod(0o644)
    path.write_bytes(b"damaged")
    with pytest.raises(IntegrityError):
        run_monitor("credit", client=client, now=T0)


# --------------------------------------------------------------------------- running


def test_time_windows_flag_drift_only_where_it_is_and_runs_are_incremental(
    client: sy.Client,
) -> None:
    create_monitor("credit", "dataset:credit@1", window="1h", target="default", client=client)
    assert run_monitor("credit", client=client, now=T0).nothing_new  # an empty log
    write(client, T0, 200)
    write(client, T0 + HOUR, 200, shift=3, seed=2)
    write(client, T0 + 2 * HOUR, 200, seed=3)
    first = run_monitor("credit", client=client, now=T0 + 2 * HOUR + 5)  # hour 3 is not over
    assert [w.number for w in first.evaluated] == [FIRST, FIRST + 1]
    assert [w.rows for w in first.evaluated] == [200, 200]
    assert [drifted(w) for w in first.evaluated] == [[], ["income", "prediction"]]
    assert [w.drift_share for w in first.evaluated] == [0.0, 0.5]  # of the two inputs
    assert "1 with drift" in first.summary()

    again = run_monitor("credit", client=client, now=T0 + 2 * HOUR + 5)
    assert again.nothing_new
    assert "nothing new" in again.summary()

    write(client, T0 + 4 * HOUR, 50, seed=4)  # hour 3 has no traffic
    later = run_monitor("credit", client=client, now=T0 + 6 * HOUR)
    assert [w.number for w in later.evaluated] == [FIRST + n for n in (2, 3, 4, 5)]
    assert [w.rows for w in later.evaluated] == [200, 0, 50, 0]
    empty = later.evaluated[1]
    assert empty.drift_share is None
    assert empty.metrics == {}
    assert {r.status for r in empty.results} == {"empty"}
    assert client.get_monitor("credit").windows == 6


def test_row_windows_never_split_a_millisecond(client: sy.Client) -> None:
    create_monitor("credit", "dataset:credit@1", rows=100, client=client)
    write(client, T0, 250, step=1)  # ten rows per millisecond
    write(client, T0 + 40, 5, seed=9)  # five more in the window's last millisecond... later
    done = run_monitor("credit", client=client, now=T0 + HOUR)
    assert [w.rows for w in done.evaluated] == [100, 100]
    assert [(w.start, w.end) for w in done.evaluated] == [(T0, T0 + 10), (T0 + 10, T0 + 20)]
    # 50 + 5 rows are left: not a window yet.
    assert run_monitor("credit", client=client, now=T0 + HOUR).nothing_new
    write(client, T0 + 100, 45, seed=10)
    more = run_monitor("credit", client=client, now=T0 + HOUR)
    assert [w.number for w in more.evaluated] == [3]
    assert more.evaluated[0].rows == 100
    # Without a target, prediction drift has no reference to compare with.
    assert {(r.kind, r.status) for r in more.evaluated[0].results if r.kind == "prediction"} == {
        ("prediction", "no_reference")
    }


def test_rows_sharing_the_last_millisecond_stay_together(sqlite_client: sy.Client) -> None:
    client = sqlite_client
    create_monitor("credit", "dataset:credit@1", rows=15, client=client)
    write(client, T0, 30, step=1)  # 10 rows at T0, 10 at T0 + 1, 10 at T0 + 2
    done = run_monitor("credit", client=client, now=T0 + HOUR)
    assert [w.rows for w in done.evaluated] == [20]  # 15 asked, the 16th..20th share its ms
    assert run_monitor("credit", client=client, now=T0 + 2).nothing_new  # T0 + 2 not over


def test_live_performance_equals_sklearn_and_late_labels_rescore(client: sy.Client) -> None:
    create_monitor("credit", "dataset:credit@1", window="1h", target="default", client=client)
    write(client, T0, 120)
    table = predictions("credit", client=client)
    ids = table.column("prediction_id").to_pylist()
    label(client, ids[:60])
    done = run_monitor("credit", client=client, now=T0 + HOUR)
    window = done.evaluated[0]
    assert (window.rows, window.labelled) == (120, 60)
    assert window.metrics == pytest.approx(expected(client, 60))

    assert run_monitor("credit", client=client, now=T0 + HOUR).nothing_new
    label(client, ids[60:100], rule=lambda i: i % 2 == 0)
    later = run_monitor("credit", client=client, now=T0 + HOUR)
    assert later.evaluated == ()
    assert [w.labelled for w in later.rescored] == [100]
    assert later.rescored[0].metrics == pytest.approx(expected(client, 100))
    assert drifted(later.rescored[0]) == drifted(window)  # drift results stay
    assert "re-scored" in later.summary()
    assert run_monitor("credit", client=client, now=T0 + HOUR).nothing_new
    stored = client.monitor_windows("credit", results=True)
    assert [w.labelled for w in stored] == [100]
    assert len(stored[0].results) == 3


def expected(client: sy.Client, count: int) -> dict[str, float]:
    """scikit-learn's metrics on the first ``count`` rows (the labelled ones)."""
    rows = predictions("credit", client=client).slice(0, count)
    y = rows.column("label").to_pylist()
    predicted = rows.column("prediction").to_pylist()
    proba = np.asarray(rows.column("probabilities").to_pylist())
    return {
        "accuracy": metrics.accuracy_score(y, predicted),
        "precision": metrics.precision_score(y, predicted),
        "recall": metrics.recall_score(y, predicted),
        "f1": metrics.f1_score(y, predicted),
        "roc_auc": metrics.roc_auc_score(y, proba[:, 1]),
        "log_loss": metrics.log_loss(y, proba),
    }


def test_regression_metrics_and_a_task_learnt_from_labels(sqlite_client: sy.Client) -> None:
    client = sqlite_client
    create_monitor("credit", "dataset:credit@1", rows=20, client=client)
    assert client.get_monitor("credit").task is None
    log = _log.PredictionLog(_log.log_folder(client.settings.home, "credit"), sync=False)
    ids = _log.new_ids(20, T0)
    values = [float(i) * 1.5 for i in range(20)]
    log.append_sync(
        [
            {
                "k": "p",
                "t": T0,
                "v": "models:/credit/1",
                "ids": ids,
                "in": {"income": values, "age": list(range(20))},
                "out": values,
                "proba": None,
                "ms": 1.0,
            }
        ]
    )
    log.close()
    truth = [v + (i % 3) - 1 for i, v in enumerate(values)]
    log_labels(
        "credit",
        [{"prediction_id": p, "label": t} for p, t in zip(ids, truth, strict=True)],
        client=client,
    )
    window = run_monitor("credit", client=client, now=T0 + 1).evaluated[0]
    assert client.get_monitor("credit").task == "regression"
    assert window.metrics == pytest.approx(
        {
            "mae": metrics.mean_absolute_error(truth, values),
            "rmse": math.sqrt(metrics.mean_squared_error(truth, values)),
            "r2": metrics.r2_score(truth, values),
        }
    )


def test_edge_cases_give_statuses_not_errors(sqlite_client: sy.Client) -> None:
    client = sqlite_client
    create_monitor(
        "credit",
        "dataset:credit@1",
        rows=10,
        columns=["income", "age"],
        thresholds={"ks": 0.5, "age": 0.01},
        client=client,
    )
    log = _log.PredictionLog(_log.log_folder(client.settings.home, "credit"), sync=False)
    log.append_sync(
        [
            {
                "k": "p",
                "t": T0,
                "v": "models:/credit/2",
                "ids": _log.new_ids(10, T0),
                "in": {"income": [None] * 10},  # no age; no usable income
                "out": ["yes"] * 10,
                "proba": None,
                "ms": 1.0,
            }
        ]
    )
    log.close()
    window = run_monitor("credit", client=client, now=T0 + 1).evaluated[0]
    statuses = {r.column: r.status for r in window.results}
    # The target is the column left over (default): predictions are strings, it is numeric.
    assert statuses == {
        "income": "all_null",
        "age": "missing_column",
        "prediction": "type_mismatch",
    }
    assert window.drift_share is None
    thresholds = {r.column: r.threshold for r in window.results}
    assert (thresholds["age"], thresholds["income"]) == (0.01, 0.5)


def test_the_results_table(client: sy.Client) -> None:
    create_monitor("credit", "dataset:credit@1", window="1h", target="default", client=client)
    write(client, T0, 60)
    write(client, T0 + HOUR, 60, shift=3, seed=2)
    label(client, predictions("credit", client=client).column("prediction_id").to_pylist()[:30])
    run_monitor("credit", client=client, now=T0 + 2 * HOUR)
    table = monitor_results("credit", client=client)
    assert table.num_rows == 6  # 2 windows x (2 inputs + prediction)
    assert table.column_names[:14] == [
        "window",
        "start",
        "end",
        "rows",
        "labelled",
        "drift_share",
        "kind",
        "column",
        "test",
        "statistic",
        "p_value",
        "threshold",
        "drift",
        "status",
    ]
    assert {"accuracy", "roc_auc"} <= set(table.column_names)
    assert table.column("accuracy").null_count == 3  # the second window has no labels
    assert str(table.schema.field("start").type) == "timestamp[ms, tz=UTC]"
    income = table.filter(pc.equal(table["column"], "income"))
    assert income.column("drift").to_pylist() == [False, True]
    second = monitor_results("credit", start=T0 + HOUR, client=client)
    assert set(second.column("window").to_pylist()) == {FIRST + 1}
    with pytest.raises(InvalidInput, match="start must be"):
        monitor_results("credit", start="yesterday", client=client)
    with pytest.raises(NotFound):
        monitor_results("nope", client=client)


def test_shadow_predictions_are_not_monitored(sqlite_client: sy.Client) -> None:
    client = sqlite_client
    create_monitor("credit", "dataset:credit@1", rows=10, client=client)
    log = _log.PredictionLog(_log.log_folder(client.settings.home, "credit"), sync=False)
    log.append_sync(
        [
            {
                "k": "p",
                "t": T0 + n,
                "r": role,
                "v": "models:/credit/1",
                "ids": _log.new_ids(5, T0 + n),
                "in": {"income": [5.0] * 5, "age": [30] * 5},
                "out": [1] * 5,
                "proba": None,
                "ms": 1.0,
            }
            for n, role in enumerate(["primary", "shadow", "canary", "shadow"])
        ]
    )
    log.close()
    done = run_monitor("credit", client=client, now=T0 + HOUR)
    assert [(w.rows, w.start, w.end) for w in done.evaluated] == [(10, T0, T0 + 3)]


def test_multiclass_metrics_are_macro_averaged_like_sklearn(sqlite_client: sy.Client) -> None:
    client = sqlite_client
    create_monitor("credit", "dataset:credit@1", rows=30, client=client)
    rng = np.random.default_rng(5)
    classes = ["bad", "good", "okay"]
    proba = rng.dirichlet([1, 1, 1], 30)
    predicted = [classes[i] for i in proba.argmax(axis=1)]
    truth = [classes[i] for i in rng.integers(0, 3, 30)]
    ids = _log.new_ids(30, T0)
    log = _log.PredictionLog(_log.log_folder(client.settings.home, "credit"), sync=False)
    record = {"k": "p", "t": T0, "v": "models:/credit/1", "ids": ids, "ms": 1.0}
    inputs = {"income": [5.0] * 30, "age": [30] * 30}
    log.append_sync([{**record, "in": inputs, "out": predicted, "proba": proba.tolist()}])
    log.close()
    log_labels(
        "credit",
        [{"prediction_id": p, "label": t} for p, t in zip(ids, truth, strict=True)],
        client=client,
    )
    with pytest.raises(InvalidInput, match="now must be"):
        run_monitor("credit", client=client, now="soon")
    window = run_monitor("credit", client=client, now=T0 + 1).evaluated[0]
    assert client.get_monitor("credit").task == "classification"
    assert window.metrics == pytest.approx(
        {
            "accuracy": metrics.accuracy_score(truth, predicted),
            "precision": metrics.precision_score(
                truth, predicted, average="macro", zero_division=0
            ),
            "recall": metrics.recall_score(truth, predicted, average="macro", zero_division=0),
            "f1": metrics.f1_score(truth, predicted, average="macro", zero_division=0),
            "roc_auc": metrics.roc_auc_score(truth, proba, multi_class="ovr", labels=classes),
            "log_loss": metrics.log_loss(truth, proba, labels=classes),
        }
    )
