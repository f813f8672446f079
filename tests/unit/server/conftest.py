"""Fixtures for the REST API: an app over a fresh store, and a test client for /api/v1.

``api`` runs each test on SQLite and PostgreSQL (through ``store_uri``). The
app is built with ``auth=False``, so every caller acts as an admin named after
the client's actor; ``as_role`` makes the app see another principal.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI

import shipyard as sy
from shipyard.server import _auth, create_app

with warnings.catch_warnings():
    # Starlette would rather its test client ran on httpx2; httpx still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

API = "http://127.0.0.1/api/v1"


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


@pytest.fixture
def app(client: sy.Client) -> FastAPI:
    return create_app(client)


@pytest.fixture
def api(app: FastAPI) -> Iterator[TestClient]:
    """Requests go to /api/v1 on 127.0.0.1 (a Host the server accepts)."""
    with TestClient(app, base_url=API, raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def lenient_api(app: FastAPI) -> Iterator[TestClient]:
    """Like ``api``, but a server error is a response (or a cut-short body), not a raise."""
    with TestClient(app, base_url=API, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def as_role(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, _auth.Role], None]:
    """``as_role("eve", Role.editor)``: later requests come from that principal."""

    def switch(name: str, role: _auth.Role) -> None:
        app.state.auth = True

        def authenticate(request: object, required: _auth.Role) -> _auth.Principal:
            if role < required:
                from shipyard.errors import PermissionDenied

                raise PermissionDenied(f"{name} is {role.name}; {required.name} needed.")
            return _auth.Principal(name, role)

        monkeypatch.setattr(_auth, "_authenticate", authenticate)

    return switch


@pytest.fixture
def registry(client: sy.Client, store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Dataset ``credit`` (versions 1 and 2), read by a run that logged model ``credit`` twice.

    Returns the run's id.
    """
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    frame = credit_frame(80)
    sy.data.register_dataset("credit", frame, client=client)
    sy.data.register_dataset("credit", credit_frame(60, seed=1), client=client)
    model = LogisticRegression().fit(frame[["income", "age"]], frame["income"] > 5)
    with sy.start_run(experiment="risk", name="train") as run:
        sy.log_params({"C": 1.0})
        sy.log_metric("auc", 0.9)
        sy.load_dataset("credit@1")
        for _ in range(2):
            sy.log_model(model, "credit", input_example=frame[["income", "age"]].head())
    return run.run_id


def credit_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "income": rng.normal(5, 1, rows),
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["north", "south"], rows),
        }
    )
