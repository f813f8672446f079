"""Schemathesis against the app's own OpenAPI spec, in process, on SQLite.

Every operation gets generated requests (valid ones and, in the coverage
phase, deliberately broken ones); every response must be below 500 and match
the spec: status code documented, body matching its schema, content type and
headers as declared. Then a stateful run chains operations through the links
schemathesis infers (create a run, then log to it, read it, ...).

The store is seeded with an experiment, a run, two versions of dataset
``credit`` and two of model ``credit``, and the path parameters' examples name
them, so generated requests reach real objects and not only 404s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis

import shipyard as sy
from shipyard.server import create_app

from .conftest import credit_frame

#: Examples per operation, and steps of the stateful run: CI time, not thoroughness.
MAX_EXAMPLES = int(os.environ.get("SHIPYARD_TEST_SCHEMATHESIS_EXAMPLES", "8"))
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


#: Built when the module is imported (schemathesis reads the spec then); seeded by ``seeded``.
ROOT = Path(tempfile.mkdtemp(prefix="shipyard-schemathesis-"))
CLIENT = sy.Client(f"sqlite:///{ROOT / 'shipyard.db'}", artifacts=str(ROOT / "blobs"))
# The in-process transport sends Host: testserver.
APP = create_app(CLIENT, allowed_hosts=("testserver", "127.0.0.1", "localhost"))
#: A schema-valid request may still be refused as bad input (400: a page token that is not
#: one, a filter that does not parse, a name with a control character) but never by the
#: schema validation (422), which would mean the spec promises more than the app accepts.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            # A 405 lists the methods of the one route it matched, not of every route on
            # that path (FastAPI's routing): not something a route can change.
            "allow_header_conformance": {"enabled": False},
            "positive_data_acceptance": {"expected-statuses": ["2XX", 400, 401, 403, 404, 409]},
        }
    }
)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def seeded() -> Iterator[None]:
    from sklearn.linear_model import LogisticRegression

    frame = credit_frame(40)
    sy.data.register_dataset("credit", frame, client=CLIENT)
    sy.data.register_dataset("credit", credit_frame(30, seed=1), client=CLIENT)
    model = LogisticRegression().fit(frame[["income", "age"]], frame["income"] > 5)
    run = CLIENT.create_run("credit", name="seed")
    CLIENT.log_batch(run.run_id, [("auc", 0.9)], params={"C": 1})
    (ROOT / "a.txt").write_text("artifact")
    CLIENT.log_artifact(run.run_id, ROOT / "a.txt")
    for _ in range(2):
        sy.log_model(model, "credit", input_example=frame[["income", "age"]].head(), client=CLIENT)
    CLIENT.set_alias("credit", "champion", 1)
    yield
    CLIENT.store.close()
    shutil.rmtree(ROOT, ignore_errors=True)


@schema.parametrize()
@hypothesis.settings(SETTINGS)
def test_every_operation(case) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        case.call_and_validate()


def test_stateful() -> None:
    machine = schema.as_state_machine()
    machine.run(
        settings=hypothesis.settings(SETTINGS, max_examples=MAX_EXAMPLES * 4, stateful_step_count=6)
    )
