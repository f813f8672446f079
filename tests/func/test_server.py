"""Real ``shipyard server`` processes: replicas on one store, and many concurrent remote writers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import shipyard as sy

START_TIMEOUT_S = 60.0
Start = Callable[[], str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def start_server(store_uri: str, tmp_path: Path) -> Iterator[Start]:
    """``start_server()`` runs one more server process on the test's store; returns its API URL."""
    processes: list[subprocess.Popen[bytes]] = []
    sy.Client(store_uri).upgrade_db()  # the servers race on requests, not on migrating
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {"SHIPYARD_URI": store_uri, "SHIPYARD_HOME": str(tmp_path / "home")}

    def start() -> str:
        port = free_port()
        with (tmp_path / f"server-{port}.log").open("wb") as log:  # the child keeps its copy
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from shipyard.cli import main; main()",
                    "server",
                    "--port",
                    str(port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return f"{base}/api/v1"
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not answer /health in time"
            time.sleep(0.1)

    yield start
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.mark.slow
def test_two_replicas_on_one_store_behave_as_one(start_server: Start) -> None:
    """A write through one server process is read through the other at once."""
    first, second = start_server(), start_server()
    with httpx.Client(timeout=30) as http:
        for n in range(20):
            writer, reader = (first, second) if n % 2 == 0 else (second, first)
            run = http.post(f"{writer}/runs", json={"experiment": "replicas", "name": f"r{n}"})
            assert run.status_code == 201, run.text
            run_id = run.json()["run_id"]
            logged = http.post(
                f"{writer}/runs/{run_id}/batch",
                json={"metrics": [{"key": "loss", "value": n, "step": 0}], "params": {"n": str(n)}},
            )
            assert logged.status_code in (200, 204), logged.text
            seen = http.get(f"{reader}/runs/{run_id}").json()
            assert seen["params"] == {"n": str(n)}
            assert seen["metrics"]["loss"]["value"] == n
        moved = http.put(f"{first}/models/none/aliases/champion", json={"version": 1})
        assert moved.status_code == 404  # errors are the same JSON on every replica
        assert moved.json()["error"]["code"] == "not_found"
        listed = http.get(f"{second}/runs", params={"experiment": "replicas", "max_results": 100})
        assert len(listed.json()["items"]) == 20


WRITERS = 16
RUNS_EACH = 5
POINTS_EACH = 200


@pytest.mark.slow
def test_sixteen_concurrent_remote_writers_lose_nothing(
    start_server: Start, store_uri: str
) -> None:
    api = start_server()
    errors: list[str] = []
    gate = threading.Barrier(WRITERS)

    def write(worker: int) -> None:
        with httpx.Client(timeout=60) as http:
            gate.wait()
            for r in range(RUNS_EACH):
                run = http.post(
                    f"{api}/runs", json={"experiment": "crowd", "name": f"w{worker}-{r}"}
                )
                if run.status_code != 201:
                    errors.append(f"create {run.status_code}: {run.text}")
                    continue
                metrics = [
                    {"key": "loss", "value": worker + step / 1000, "step": step}
                    for step in range(POINTS_EACH)
                ]
                for start in range(0, POINTS_EACH, 50):
                    done = http.post(
                        f"{api}/runs/{run.json()['run_id']}/batch",
                        json={"metrics": metrics[start : start + 50]},
                    )
                    if done.status_code not in (200, 204):
                        errors.append(f"batch {done.status_code}: {done.text}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert errors == []

    client = sy.Client(store_uri)
    runs = client.search_runs("crowd", max_results=1000).runs
    assert len(runs) == WRITERS * RUNS_EACH
    for run in runs:
        assert [m.step for m in client.get_metric_history(run.run_id, "loss")] == list(
            range(POINTS_EACH)
        )
    assert client.verify_audit().ok
