"""`shipyard serve` in real processes: kill -9 loses no answered prediction, SIGTERM drains,
an alias move under load fails no request, and memory stays flat over a soak."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.config import Settings
from shipyard.serving import predictions

START_TIMEOUT_S = 60.0
ROW = {"inputs": [{"income": 6.0, "age": 40}]}
# `serve` is registered on the CLI by its own line in shipyard/cli/__init__.py; this runs it
# whether or not that line is there yet.
LAUNCH = (
    "import sys\n"
    "from shipyard.cli._app import cli\n"
    "from shipyard.cli._serving import serve\n"
    "cli.add_command(serve)\n"
    "cli.main(args=sys.argv[1:], prog_name='shipyard')\n"
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fit(seed: int, flip: bool = False) -> tuple[object, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"income": rng.normal(5, 1, 100), "age": rng.integers(18, 90, 100)})
    return LogisticRegression().fit(frame, ((frame["income"] > 5) ^ flip).astype(int)), frame


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base: str, log: Path) -> None:
        self.process, self.base, self.log = process, base, log


@pytest.fixture
def home(store_uri: str, tmp_path: Path) -> sy.Client:
    client = sy.Client(
        settings=Settings.load(
            uri=store_uri, artifacts=str(tmp_path / "blobs"), home=str(tmp_path / "home")
        )
    )
    client.upgrade_db()
    model, frame = fit(0)
    sy.log_model(model, "credit", input_example=frame.head(), client=client)
    client.set_alias("credit", "champion", 1)
    return client


@pytest.fixture
def start_serve(home: sy.Client, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    processes: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env |= {
        "SHIPYARD_URI": home.settings.uri,
        "SHIPYARD_HOME": str(home.settings.home),
        "SHIPYARD_ARTIFACTS": home.settings.artifacts,
    }

    def start(*args: str, uri: str | None = "models:/credit@champion") -> Server:
        """``shipyard serve [uri] --port P *args``, ready."""
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    LAUNCH,
                    "serve",
                    *([] if uri is None else [uri]),
                    "--port",
                    str(port),
                    *args,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    return Server(process, base, log)
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def load(
    base: str, stop: threading.Event, answered: list[dict], failures: list[str], body=ROW
) -> None:
    with httpx.Client(base_url=base, timeout=30) as http:
        while not stop.is_set():
            try:
                response = http.post("/predict", json=body)
            except httpx.TransportError as exc:  # the server was killed: not acknowledged
                failures.append(f"transport: {exc}")
                return
            if response.status_code == 200:
                answered.append(response.json() | {"at": time.monotonic()})
            else:
                failures.append(f"{response.status_code}: {response.text}")


def run_load(base: str, threads: int, body=ROW):  # type: ignore[no-untyped-def]
    stop = threading.Event()
    answered: list[dict] = []
    failures: list[str] = []
    workers = [
        threading.Thread(target=load, args=(base, stop, answered, failures, body))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    return stop, workers, answered, failures


@pytest.mark.slow
def test_kill_9_loses_no_answered_prediction(start_serve, home: sy.Client) -> None:
    server = start_serve()
    stop, workers, answered, _ = run_load(server.base, 8, {"inputs": ROW["inputs"] * 3})
    deadline = time.monotonic() + 60
    while len(answered) < 500:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)  # requests are in flight
    server.process.wait(10)
    stop.set()
    for worker in workers:
        worker.join(30)
    acknowledged = {pid for body in answered for pid in body["prediction_ids"]}
    logged = set(predictions("credit", client=home).column("prediction_id").to_pylist())
    assert len(acknowledged) >= 1500
    assert acknowledged <= logged, f"{len(acknowledged - logged)} answered predictions lost"


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests_and_closes_the_log(start_serve, home) -> None:
    server = start_serve()
    stop, workers, answered, failures = run_load(server.base, 4)
    time.sleep(1.0)
    server.process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once its graceful shutdown is done.
    assert server.process.wait(30) in (0, -signal.SIGTERM), server.log.read_text()
    assert "Application shutdown complete" in server.log.read_text()
    stop.set()
    for worker in workers:
        worker.join(30)
    assert all(f.startswith("transport") for f in failures), failures[:3]  # refused, not failed
    folder = home.settings.home / "predictions" / "credit" / "wal"
    assert [p.suffix for p in folder.iterdir()] == [".seg"]  # closed: nothing half-open
    logged = set(predictions("credit", client=home).column("prediction_id").to_pylist())
    assert {pid for body in answered for pid in body["prediction_ids"]} <= logged


@pytest.mark.slow
def test_an_alias_move_under_load_fails_nothing_and_switches_within_5_s(
    start_serve, home: sy.Client
) -> None:
    server = start_serve()
    stop, workers, answered, failures = run_load(server.base, 6)
    time.sleep(1.0)
    model, frame = fit(1, flip=True)
    sy.log_model(model, "credit", input_example=frame.head(), client=home)
    home.set_alias("credit", "champion", 2)
    moved = time.monotonic()
    time.sleep(6.0)
    stop.set()
    for worker in workers:
        worker.join(30)
    assert failures == []
    versions = [body["model_version"] for body in answered]
    assert versions[0] == "models:/credit/1"
    first_new = next(body["at"] for body in answered if body["model_version"].endswith("/2"))
    assert first_new - moved < 5.0
    after = [b["model_version"] for b in answered if b["at"] > first_new + 1.0]
    assert after
    assert set(after) == {"models:/credit/2"}
    logged = predictions("credit", client=home)
    assert set(logged.column("model_version").to_pylist()) == {
        "models:/credit/1",
        "models:/credit/2",
    }


@pytest.mark.slow
def test_a_stored_deployment_is_served_and_an_update_picked_up_within_5_s(
    start_serve, home: sy.Client
) -> None:
    model, frame = fit(1, flip=True)
    sy.log_model(model, "credit", input_example=frame.head(), client=home)
    home.create_deployment(
        "credit",
        "models:/credit@champion",
        canary="models:/credit/2",
        canary_percent=50,
        shadow="models:/credit/2",
    )
    server = start_serve("--deployment", "credit", uri=None)
    assert "canary models:/credit/2 at 50%" in server.log.read_text()
    with httpx.Client(base_url=server.base, timeout=30) as http:
        answered = {http.post("/predict", json=ROW).json()["model_version"] for _ in range(40)}
        assert answered == {"models:/credit/1", "models:/credit/2"}
        home.update_deployment("credit", canary=None, shadow=None)
        updated = time.monotonic()
        while http.get("/ready").json()["canary"] is not None:
            assert time.monotonic() - updated < 5.0, "the update was not served within 5 s"
            time.sleep(0.05)
        answered = {http.post("/predict", json=ROW).json()["model_version"] for _ in range(40)}
        assert answered == {"models:/credit/1"}
        assert http.get("/ready").json()["shadow"] is None
    roles = predictions("credit", shadow=True, client=home).column("role").to_pylist()
    assert {"primary", "canary", "shadow"} <= set(roles)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _hammer(port: int, clients: int, requests: int) -> int:
    body = json.dumps(ROW).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    ok = 0

    async def client(count: int) -> None:
        nonlocal ok
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            await reader.readexactly(length)
            ok += head.startswith(b"HTTP/1.1 200")
        writer.close()

    await asyncio.gather(*(client(requests // clients) for _ in range(clients)))
    return ok


@pytest.mark.slow
def test_soak_20000_requests_resident_memory_grows_under_10_percent(start_serve, home) -> None:
    """The issue asks 200,000; 20,000 here keeps the suite short (the benchmark runs more).
    Served through its ONNX export (``--runtime auto`` picks it), the fast path."""
    sy.export_onnx("models:/credit/1", client=home)
    server = start_serve()
    port = int(server.base.rsplit(":", 1)[1])
    assert asyncio.run(_hammer(port, 8, 4000)) == 4000  # warm-up
    before = _rss_kib(server.process.pid)
    assert asyncio.run(_hammer(port, 8, 20_000)) == 20_000
    after = _rss_kib(server.process.pid)
    assert after < before * 1.10, f"RSS grew from {before} KiB to {after} KiB"
