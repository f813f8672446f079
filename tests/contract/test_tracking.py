"""Experiments, runs, params, metrics, tags, search and fluent logging: the same both ways."""

from __future__ import annotations

import math

import pytest

import shipyard as sy
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, ShipyardError


def test_client_is_remote_exactly_when_the_uri_names_a_server(
    any_client: sy.Client, mode: str
) -> None:
    from shipyard.tracking._remote import RemoteClient

    assert isinstance(any_client, sy.Client)
    assert isinstance(any_client, RemoteClient) == (mode == "remote")
    assert isinstance(sy.Client(), RemoteClient) == (mode == "remote")


def test_experiments(any_client: sy.Client) -> None:
    created = any_client.create_experiment("credit", "risk models")
    assert any_client.get_experiment("credit") == created
    assert any_client.get_experiment(created.experiment_id) == created
    assert [e.name for e in any_client.list_experiments()] == ["credit"]
    with pytest.raises(AlreadyExists):
        any_client.create_experiment("credit")
    with pytest.raises(NotFound):
        any_client.get_experiment("nope")


def test_runs_params_metrics_tags(any_client: sy.Client) -> None:
    run = any_client.create_run("credit", name="lr", tags={"team": "risk"})
    assert run.status is sy.RunStatus.RUNNING
    assert run.tags == {"team": "risk"}
    any_client.log_param(run.run_id, "C", 0.5)
    any_client.log_batch(
        run.run_id,
        metrics=[("auc", 0.8, 0), ("auc", 0.9, 1), sy.Metric("loss", math.nan, 0, 1_000)],
        params={"model": "lr"},
        tags={"stage": "dev"},
    )
    any_client.log_metric(run.run_id, "inf", math.inf, step=3)
    any_client.set_tag(run.run_id, "owner", "ann")
    any_client.end_run(run.run_id)

    got = any_client.get_run(run.run_id)
    assert got.status is sy.RunStatus.FINISHED
    assert got.end_time is not None
    assert got.params == {"C": "0.5", "model": "lr"}
    assert got.tags == {"team": "risk", "stage": "dev", "owner": "ann"}
    assert got.metrics["auc"].value == 0.9
    assert got.metrics["auc"].step == 1
    assert math.isnan(got.metrics["loss"].value)
    assert got.metrics["inf"].value == math.inf
    history = any_client.get_metric_history(run.run_id, "auc")
    assert [(m.step, m.value) for m in history] == [(0, 0.8), (1, 0.9)]

    with pytest.raises(Conflict):
        any_client.log_param(run.run_id, "C", 1.0)  # params are immutable


def test_bad_input_raises_the_same_error_both_ways(any_client: sy.Client) -> None:
    run = any_client.create_run("credit")
    with pytest.raises(InvalidInput):
        any_client.log_metric(run.run_id, "auc", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        any_client.log_batch(run.run_id, metrics=["not a metric"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput):
        any_client.end_run(run.run_id, "RUNNING")
    with pytest.raises(InvalidInput):
        any_client.search_runs(filter="metrics.auc >>> 3")
    with pytest.raises(InvalidInput):
        any_client.search_runs(page_token="garbage")
    with pytest.raises(InvalidInput):
        any_client.search_runs(max_results=0)
    with pytest.raises(NotFound):
        any_client.get_run("0" * 32)
    with pytest.raises(NotFound):
        any_client.log_param("0" * 32, "a", 1)
    with pytest.raises(sy.errors.UnsafePath):
        any_client.list_artifacts(run.run_id, "../etc")


def test_search_filter_order_and_paging(any_client: sy.Client) -> None:
    for i in range(7):
        run = any_client.create_run("search", name=f"r{i}")
        any_client.log_batch(run.run_id, metrics=[("auc", i / 10)], params={"i": i % 2})
        any_client.end_run(run.run_id)
    other = any_client.create_run("other")
    any_client.log_metric(other.run_id, "auc", 0.99)

    page = any_client.search_runs(
        "search", filter="params.i = '1'", order_by=["metrics.auc DESC"], max_results=2
    )
    assert [r.name for r in page] == ["r5", "r3"]
    assert page.next_page_token is not None
    rest = any_client.search_runs(
        "search",
        filter="params.i = '1'",
        order_by=["metrics.auc DESC"],
        max_results=2,
        page_token=page.next_page_token,
    )
    assert [r.name for r in rest] == ["r1"]
    assert rest.next_page_token is None
    assert len(any_client.search_runs(["search", "other"], max_results=100)) == 8
    best = any_client.search_runs(order_by="metrics.auc DESC", max_results=1)
    assert best.runs[0].run_id == other.run_id


def test_fluent_runs_nest_and_flush(any_client: sy.Client) -> None:
    with sy.start_run(experiment="fluent", name="parent", tags={"k": "v"}) as parent:
        sy.log_params({"lr": 0.1})
        for step in range(25):
            sy.log_metric("loss", 1 / (step + 1), step=step)
        with sy.start_run(name="child", nested=True) as child:
            sy.log_metrics({"acc": 0.7}, step=1)
            sy.set_tag("fold", 1)
        assert sy.active_run() is parent
        assert parent.info.params == {"lr": "0.1"}  # info flushes first
    assert sy.active_run() is None

    got = any_client.get_run(parent.run_id)
    assert got.status is sy.RunStatus.FINISHED
    assert len(any_client.get_metric_history(parent.run_id, "loss")) == 25
    kid = any_client.get_run(child.run_id)
    assert kid.parent_run_id == parent.run_id
    assert kid.experiment_id == got.experiment_id
    assert kid.metrics["acc"].value == 0.7
    assert kid.tags == {"fold": "1"}
    assert kid.status is sy.RunStatus.FINISHED


def test_a_failing_block_ends_its_run_failed(any_client: sy.Client) -> None:
    with pytest.raises(RuntimeError), sy.start_run(experiment="fluent") as run:
        sy.log_metric("x", 1.0)
        raise RuntimeError("boom")
    got = any_client.get_run(run.run_id)
    assert got.status is sy.RunStatus.FAILED
    assert got.metrics["x"].value == 1.0


def test_heartbeats_keep_a_fluent_run_alive(
    any_client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.tracking import _fluent

    with sy.start_run(experiment="beat") as run:
        run.client._heartbeat([run.run_id])  # what the keeper thread sends
        assert any_client.get_run(run.run_id).status is sy.RunStatus.RUNNING
    assert _fluent._tracker.active() is None


def test_audit_trail(any_client: sy.Client) -> None:
    run = any_client.create_run("audited")
    any_client.log_param(run.run_id, "a", 1)
    events = any_client.audit_events("run", run.run_id)
    assert [e.action for e in events][:1] == ["run.create"]
    assert all(e.object_id == run.run_id for e in events)
    assert len(any_client.audit_events(limit=1)) == 1
    assert any_client.audit_events(limit=1, newest=True)[0] == any_client.audit_events()[-1]
    report = any_client.verify_audit()
    assert report.ok
    assert report.checked == len(any_client.audit_events())
    assert isinstance(report.checked, int)


def test_errors_are_shipyard_errors(any_client: sy.Client) -> None:
    with pytest.raises(ShipyardError):
        any_client.get_model("nope")


def test_create_run_returns_the_run_get_run_reads(any_client: sy.Client) -> None:
    """create_run builds its answer from what it wrote; it must equal a fresh read."""
    plain = any_client.create_run()
    assert plain == any_client.get_run(plain.run_id)
    assert plain.name.startswith("run-")
    experiment = any_client.get_experiment("Default").experiment_id
    child = any_client.create_run(
        experiment, name="child", tags={"n": 1, "ok": True}, parent_run_id=plain.run_id
    )
    assert child == any_client.get_run(child.run_id)
    assert (child.experiment_id, child.tags) == (experiment, {"n": "1", "ok": "True"})
    assert (child.params, child.metrics, child.end_time) == ({}, {}, None)
    assert child.created_by == any_client.audit_events("run", child.run_id)[0].actor
    with sy.start_run(experiment="fluent", tags={"t": "v"}) as run:  # heartbeat on
        assert run.info == any_client.get_run(run.run_id)
