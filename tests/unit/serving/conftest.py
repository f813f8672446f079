"""Fixtures for serving: a registered model, and an app serving it in-process.

``registered`` logs a logistic regression over ``income`` (double) and ``age``
(int64) as ``credit`` version 1 with alias ``champion``. ``serve(...)`` builds
the app, enters its lifespan and waits until it is ready.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.config import Settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

BASE = "http://127.0.0.1"


def credit_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(5, 1, rows), "age": rng.integers(18, 90, rows)})


def fit(frame: pd.DataFrame, flip: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression

    target = (frame["income"] > 5) ^ flip
    return LogisticRegression().fit(frame, target.astype(int))


def make_client(store_uri: str, root: Path) -> sy.Client:
    settings = Settings.load(uri=store_uri, artifacts=str(root / "blobs"), home=str(root / "home"))
    return sy.Client(settings=settings)


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return make_client(store_uri, tmp_path)


@pytest.fixture
def registered(client: sy.Client) -> Any:
    """``credit`` v1 (alias champion); returns the fitted model."""
    frame = credit_frame(200)
    model = fit(frame)
    sy.log_model(model, "credit", input_example=frame.head(), client=client)
    client.set_alias("credit", "champion", 1)
    return model


def wait_ready(api: TestClient, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while api.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, api.get("/ready").json()
        time.sleep(0.02)


@pytest.fixture
def serve(client: sy.Client) -> Iterator[Callable[..., TestClient]]:
    """``serve(uri="models:/credit@champion", **options)``: a ready TestClient on the app."""
    from shipyard.serving import create_serving_app

    opened: list[TestClient] = []

    def start(uri: str = "models:/credit@champion", *, ready: bool = True, **options: Any):  # type: ignore[no-untyped-def]
        options.setdefault("compact_interval", 3600)
        app = create_serving_app(uri, client=options.pop("client", client), **options)
        api = TestClient(app, base_url=BASE, raise_server_exceptions=False)
        api.__enter__()
        opened.append(api)
        if ready:
            wait_ready(api)
        return api

    yield start
    for api in reversed(opened):
        api.__exit__(None, None, None)
