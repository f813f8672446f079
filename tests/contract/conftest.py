"""One public API, two ways to reach a store: the contract suite runs every test on both.

``any_client`` is ``sy.Client`` on a fresh store ("embedded"), or ``sy.Client``
pointed at a live ``shipyard server`` serving that kind of store over HTTP
("remote": uvicorn in a background thread on a free loopback port). Either
way ``SHIPYARD_URI`` names it, so the fluent API (``sy.start_run``,
``sy.log_model``, ...) goes the same way. Both run on SQLite and PostgreSQL
(``store_uri``). ``backing`` is the embedded client behind it (the server's
own, in remote mode), for what a test must do to the store directly.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

import shipyard as sy
from shipyard.server import create_app
from shipyard.tracking import _remote

MODES = ("embedded", "remote")


class LiveServer:
    """``app`` served by uvicorn on 127.0.0.1 in a daemon thread, for a ``with`` block."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", ws="none", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"The test server at {self.url} did not start.")
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        _remote.close_pools(self.url)
        self.server.should_exit = True
        self.thread.join(15)
        self.socket.close()


@pytest.fixture
def backing(store_uri: str, tmp_path: Path) -> sy.Client:
    """The embedded client on a fresh store: the test's client, or the server's."""
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def any_client(
    mode: str,
    backing: sy.Client,
    store_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[sy.Client]:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", backing.settings.artifacts)
    if mode == "embedded":
        monkeypatch.setenv("SHIPYARD_URI", store_uri)
        yield backing
        return
    with LiveServer(create_app(backing)) as server:
        monkeypatch.setenv("SHIPYARD_URI", server.url)
        client = sy.Client()
        try:
            yield client
        finally:
            sy.flush()
            _remote.close_pools(server.url)


@pytest.fixture
def serve(backing: sy.Client) -> Iterator[object]:
    """``serve(app)``: a live server for ``app`` until the test ends; returns its URL."""
    with contextlib.ExitStack() as stack:

        def start(app: FastAPI) -> str:
            return stack.enter_context(LiveServer(app)).url

        yield start
