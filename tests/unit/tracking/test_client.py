"""The Client contract: every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shipyard as sy
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound


@pytest.fixture
def client(store_uri: str, tmp_path) -> sy.Client:  # type: ignore[no-untyped-def]
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


# ------------------------------------------------------------------- experiments


def test_experiments_are_created_listed_and_found_by_name_or_id(client: sy.Client) -> None:
    first = client.create_experiment("credit", description="default risk")
    second = client.create_experiment("churn")
    assert [e.name for e in client.list_experiments()] == ["credit", "churn"]
    assert client.get_experiment("credit") == first
    assert client.get_experiment(second.experiment_id) == second
    assert first.description == "default risk"


def test_duplicate_experiment_is_already_exists_and_leaves_one(client: sy.Client) -> None:
    client.create_experiment("credit")
    with pytest.raises(AlreadyExists, match="credit"):
        client.create_experiment("credit")
    assert len(client.list_experiments()) == 1


def test_unknown_experiment_is_not_found(client: sy.Client) -> None:
    with pytest.raises(NotFound, match="nope"):
        client.get_experiment("nope")


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "x" * 300, 7])
def test_bad_experiment_names_are_invalid_input(client: sy.Client, bad: object) -> None:
    with pytest.raises(InvalidInput):
        client.create_experiment(bad)  # type: ignore[arg-type]
    assert client.list_experiments() == []


# -------------------------------------------------------------------------- runs


def test_create_run_creates_missing_experiment_and_starts_running(client: sy.Client) -> None:
    run = client.create_run("credit", name="lr", tags={"team": "risk"})
    assert run.status is sy.RunStatus.RUNNING
    assert run.name == "lr"
    assert run.tags == {"team": "risk"}
    assert client.get_experiment("credit").experiment_id == run.experiment_id
    assert run.end_time is None


def test_end_run_sets_status_and_end_time(client: sy.Client) -> None:
    run = client.create_run("credit")
    client.end_run(run.run_id, "FAILED")
    ended = client.get_run(run.run_id)
    assert ended.status is sy.RunStatus.FAILED
    assert ended.end_time is not None
    assert ended.end_time >= ended.start_time
    client.end_run(run.run_id, "FAILED")  # the same status again is a no-op
    with pytest.raises(Conflict, match="FAILED"):
        client.end_run(run.run_id, "FINISHED")


@pytest.mark.parametrize("bad", ["DONE", "RUNNING", ""])
def test_end_run_rejects_bad_status(client: sy.Client, bad: str) -> None:
    run = client.create_run("credit")
    with pytest.raises(InvalidInput):
        client.end_run(run.run_id, bad)
    assert client.get_run(run.run_id).status is sy.RunStatus.RUNNING


def test_unknown_run_is_not_found(client: sy.Client) -> None:
    with pytest.raises(NotFound, match="0" * 32):
        client.get_run("0" * 32)
    with pytest.raises(NotFound):
        client.log_metric("0" * 32, "auc", 0.5)


def test_child_run_records_parent_and_unknown_parent_is_refused(client: sy.Client) -> None:
    parent = client.create_run("credit")
    child = client.create_run("credit", parent_run_id=parent.run_id)
    assert child.parent_run_id == parent.run_id
    with pytest.raises(NotFound):
        client.create_run("credit", parent_run_id="f" * 32)


# ------------------------------------------------------------------------ params


def test_params_are_strings_and_immutable(client: sy.Client) -> None:
    run = client.create_run("credit")
    client.log_batch(run.run_id, params={"C": 0.1, "model": "lr", "balanced": True})
    client.log_param(run.run_id, "C", "0.1")  # the same value again is fine
    with pytest.raises(Conflict) as info:
        client.log_param(run.run_id, "C", 0.2)
    assert "'0.1'" in str(info.value)
    assert "'0.2'" in str(info.value)
    assert client.get_run(run.run_id).params == {"C": "0.1", "model": "lr", "balanced": "True"}


def test_log_batch_is_all_or_nothing(client: sy.Client) -> None:
    run = client.create_run("credit")
    client.log_param(run.run_id, "C", "1")
    with pytest.raises(Conflict):
        client.log_batch(
            run.run_id,
            metrics=[sy.Metric("auc", 0.9, 0, 1)],
            params={"C": "2", "penalty": "l2"},
            tags={"t": "x"},
        )
    stored = client.get_run(run.run_id)
    assert stored.params == {"C": "1"}
    assert stored.metrics == {}
    assert stored.tags == {}


@pytest.mark.parametrize(
    ("params", "tags"),
    [
        ({"": "x"}, None),
        ({"k\x00": "x"}, None),
        ({"k": ["not", "a", "string"]}, None),
        ({"k": "x" * 70_000}, None),
        (None, {"k": {"nested": 1}}),
        (["not a mapping"], None),
    ],
)
def test_bad_params_and_tags_are_invalid_input(client: sy.Client, params, tags) -> None:  # type: ignore[no-untyped-def]
    run = client.create_run("credit")
    with pytest.raises(InvalidInput):
        client.log_batch(run.run_id, params=params, tags=tags)
    stored = client.get_run(run.run_id)
    assert stored.params == {}
    assert stored.tags == {}


def test_tags_can_be_overwritten(client: sy.Client) -> None:
    run = client.create_run("credit", tags={"stage": "dev"})
    client.set_tag(run.run_id, "stage", "prod")
    assert client.get_run(run.run_id).tags == {"stage": "prod"}


# ----------------------------------------------------------------------- metrics


def test_metric_history_keeps_every_point_in_step_order(client: sy.Client) -> None:
    run = client.create_run("credit")
    client.log_batch(
        run.run_id,
        metrics=[sy.Metric("loss", 1.0 / (s + 1), s, 1000 + s) for s in reversed(range(50))],
    )
    history = client.get_metric_history(run.run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert client.get_run(run.run_id).metrics["loss"].step == 49


def test_latest_metric_is_highest_step_then_latest_time(client: sy.Client) -> None:
    run = client.create_run("credit")
    client.log_batch(run.run_id, metrics=[("auc", 0.7, 5, 100)])
    client.log_batch(run.run_id, metrics=[("auc", 0.1, 3, 999)])  # older step: not latest
    client.log_batch(run.run_id, metrics=[("auc", 0.8, 5, 200)])  # same step, later time
    assert client.get_run(run.run_id).metrics["auc"].value == 0.8


def test_nan_and_infinities_are_stored_faithfully(client: sy.Client) -> None:
    run = client.create_run("credit")
    # -0.0 is left out: SQLite stores it as 0.0.
    values = [math.nan, math.inf, -math.inf, 0.0, 1e308, 5e-324, -1.5]
    client.log_batch(run.run_id, metrics=[("x", v, i, i) for i, v in enumerate(values)])
    stored = [m.value for m in client.get_metric_history(run.run_id, "x")]
    assert math.isnan(stored[0])
    assert stored[1:] == values[1:]


@pytest.mark.parametrize(
    "metric",
    [
        ("auc", "high", 0, 1),
        ("auc", None, 0, 1),
        ("auc", True, 0, 1),
        ("auc", 0.5, 1.5, 1),
        ("auc", 0.5, 2**64, 1),
        ("auc", 0.5, 0, -1),
        ("", 0.5, 0, 1),
        ("only-key",),
        "auc=0.5",
    ],
)
def test_bad_metrics_are_invalid_input_and_nothing_is_written(client: sy.Client, metric) -> None:  # type: ignore[no-untyped-def]
    run = client.create_run("credit")
    with pytest.raises(InvalidInput):
        client.log_batch(run.run_id, metrics=[("ok", 1.0, 0, 1), metric])
    assert client.get_run(run.run_id).metrics == {}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.floats(allow_nan=True, allow_infinity=True),
    step=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_any_float_and_step_round_trip(client: sy.Client, value: float, step: int) -> None:
    run = client.create_run("prop")
    client.log_metric(run.run_id, "m", value, step=step)
    (point,) = client.get_metric_history(run.run_id, "m")
    assert point.step == step
    if math.isnan(value):
        assert math.isnan(point.value)
    else:
        assert point.value == value


def test_a_point_written_twice_is_stored_once_but_other_values_are_kept(client: sy.Client) -> None:
    run = client.create_run("credit")
    point = sy.Metric("loss", 0.5, 3, 1000)
    client.log_batch(run.run_id, metrics=[point])
    client.log_batch(run.run_id, metrics=[point])  # a retried flush, say
    client.log_batch(run.run_id, metrics=[("loss", 0.25, 3, 1000), ("loss", math.nan, 3, 1000)])
    values = [m.value for m in client.get_metric_history(run.run_id, "loss")]
    assert len(values) == 3
    assert math.isnan(values[0])  # same step and time: ordered by value, NaN stored as 0.0
    assert values[1:] == [0.25, 0.5]
