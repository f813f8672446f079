"""The fluent API in one process: run lifecycle, buffering, active-run isolation."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import shipyard as sy
from shipyard.errors import Conflict, InvalidInput, ShipyardError


@pytest.fixture
def client(store_uri: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    return sy.Client()


def test_run_finishes_when_the_block_completes(client: sy.Client) -> None:
    with sy.start_run(experiment="credit", name="lr", tags={"team": "risk"}) as run:
        assert sy.active_run() is run
        sy.log_params({"C": 0.1})
        sy.set_tag("stage", "dev")
        for step in range(10):
            sy.log_metric("loss", 1 / (step + 1), step=step)
        sy.log_metrics({"auc": 0.9, "f1": 0.8})
    assert sy.active_run() is None
    stored = client.get_run(run.run_id)
    assert stored.status is sy.RunStatus.FINISHED
    assert stored.params == {"C": "0.1"}
    assert stored.tags == {"team": "risk", "stage": "dev"}
    assert set(stored.metrics) == {"loss", "auc", "f1"}
    assert len(client.get_metric_history(run.run_id, "loss")) == 10


def test_run_fails_when_the_block_raises_and_keeps_its_points(client: sy.Client) -> None:
    with pytest.raises(ZeroDivisionError), sy.start_run(experiment="credit") as run:
        sy.log_metric("before", 1.0)
        _ = 1 / 0
    stored = client.get_run(run.run_id)
    assert stored.status is sy.RunStatus.FAILED
    assert stored.metrics["before"].value == 1.0


def test_keyboard_interrupt_ends_the_run_killed(client: sy.Client) -> None:
    with pytest.raises(KeyboardInterrupt), sy.start_run(experiment="credit") as run:
        raise KeyboardInterrupt
    assert client.get_run(run.run_id).status is sy.RunStatus.KILLED


def test_nested_runs_record_their_parent(client: sy.Client) -> None:
    with sy.start_run(experiment="credit") as parent:
        with pytest.raises(Conflict, match="nested=True"):
            sy.start_run(experiment="credit")
        with sy.start_run(experiment="credit", nested=True) as child:
            assert sy.active_run() is child
        assert sy.active_run() is parent
    assert client.get_run(child.run_id).parent_run_id == parent.run_id


def test_logging_without_an_active_run_is_a_clear_error(client: sy.Client) -> None:
    with pytest.raises(ShipyardError, match="No active run"):
        sy.log_metric("auc", 0.5)
    with pytest.raises(ShipyardError, match="No active run"):
        sy.end_run()


def test_start_run_without_with_ends_through_end_run(client: sy.Client) -> None:
    run = sy.start_run(experiment="credit")
    sy.log_metric("m", 2.0)
    sy.end_run("KILLED")
    assert client.get_run(run.run_id).status is sy.RunStatus.KILLED
    assert client.get_run(run.run_id).metrics["m"].value == 2.0


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (sy.log_metric, ("auc", "high")),
        (sy.log_metric, ("", 1.0)),
        (sy.log_metric, ("auc", 1.0, 1.5)),
        (sy.log_metrics, (["auc", 1.0],)),
        (sy.log_params, ({"k": object()},)),
    ],
)
def test_bad_fluent_input_is_invalid_input_and_the_run_goes_on(
    client: sy.Client, call, args
) -> None:  # type: ignore[no-untyped-def]
    with sy.start_run(experiment="credit") as run:
        with pytest.raises(InvalidInput):
            call(*args)
        sy.log_metric("ok", 1.0)
    stored = client.get_run(run.run_id)
    assert stored.status is sy.RunStatus.FINISHED
    assert set(stored.metrics) == {"ok"}


def test_points_are_buffered_until_flush(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", "3600")
    with sy.start_run(experiment="buffered") as run:
        sy.log_metric("m", 1.0)
        assert client.get_metric_history(run.run_id, "m") == []
        sy.flush()
        assert len(client.get_metric_history(run.run_id, "m")) == 1


def test_full_buffer_flushes_on_the_logging_thread(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", "3600")
    monkeypatch.setenv("SHIPYARD_FLUSH_SIZE", "10")
    with sy.start_run(experiment="sized") as run:
        for step in range(25):
            sy.log_metric("m", float(step), step=step)
        assert len(client.get_metric_history(run.run_id, "m")) == 20
    assert len(client.get_metric_history(run.run_id, "m")) == 25


def test_background_thread_flushes_by_interval(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", "0.05")
    with sy.start_run(experiment="interval") as run:
        sy.log_metric("m", 1.0)
        deadline = time.monotonic() + 5
        while not client.get_metric_history(run.run_id, "m") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(client.get_metric_history(run.run_id, "m")) == 1


def test_each_thread_has_its_own_active_run(client: sy.Client) -> None:
    seen: dict[str, str | None] = {}

    def worker(name: str) -> None:
        assert sy.active_run() is None
        with sy.start_run(experiment="threads", name=name) as run:
            time.sleep(0.05)
            active = sy.active_run()
            seen[name] = active.run_id if active else None
            assert seen[name] == run.run_id

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(set(seen.values())) == 4


def test_each_asyncio_task_has_its_own_active_run(client: sy.Client) -> None:
    async def task(name: str) -> str:
        with sy.start_run(experiment="tasks", name=name) as run:
            await asyncio.sleep(0.01)
            active = sy.active_run()
            assert active is run
            return run.run_id

    async def main() -> list[str]:
        return await asyncio.gather(*(task(f"a{i}") for i in range(3)))

    assert len(set(asyncio.run(main()))) == 3


def test_changing_settings_between_runs_loses_no_buffered_point(
    client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_INTERVAL", "3600")
    outer = sy.start_run(experiment="settings")
    sy.log_metric("m", 1.0)
    monkeypatch.setenv("SHIPYARD_FLUSH_SIZE", "500")
    with sy.start_run(experiment="settings", nested=True):
        pass
    assert len(client.get_metric_history(outer.run_id, "m")) == 1
    outer.end()


def test_a_child_run_without_an_experiment_stays_in_its_parents(client: sy.Client) -> None:
    with sy.start_run(experiment="credit") as parent, sy.start_run(nested=True) as child:
        pass
    assert client.get_run(child.run_id).experiment_id == client.get_run(parent.run_id).experiment_id
    assert [e.name for e in client.list_experiments()] == ["credit"]
