"""Deployments kept in the store, through the public API: the same embedded and remote."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import shipyard as sy
from shipyard.errors import AlreadyExists, InvalidInput, NotFound


@pytest.fixture
def credit(any_client: sy.Client) -> sy.Client:
    """``credit`` versions 1 and 2; champion -> 1, challenger -> 2."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(5, 1, 40), "age": rng.integers(18, 90, 40)})
    model = LogisticRegression().fit(X, (X["income"] > 5).astype(int))
    for _ in range(2):
        sy.log_model(model, "credit", input_example=X.head(), client=any_client)
    any_client.set_alias("credit", "champion", 1)
    any_client.set_alias("credit", "challenger", 2)
    return any_client


def test_create_get_list_update_delete(credit: sy.Client) -> None:
    made = credit.create_deployment(
        "credit",
        "models:/credit@champion",
        canary=" models:/credit@challenger",
        canary_percent=10,
        shadow="models:/credit/2",
        description="loans",
    )
    assert (made.name, made.model_uri, made.canary_uri, made.shadow_uri) == (
        "credit",
        "models:/credit@champion",
        "models:/credit@challenger",  # normalised
        "models:/credit/2",
    )
    assert made.canary_percent == 10.0
    assert made.description == "loans"
    assert credit.get_deployment("credit") == made
    credit.create_deployment("batch", "models:/credit/1")
    assert [d.name for d in credit.list_deployments()] == ["batch", "credit"]

    no_canary = credit.update_deployment("credit", canary=None)
    assert (no_canary.canary_uri, no_canary.canary_percent) == (None, None)
    assert no_canary.shadow_uri == "models:/credit/2"  # left out: kept
    assert no_canary.updated_at >= made.updated_at
    again = credit.update_deployment("credit", canary="models:/credit/2", canary_percent=25.5)
    assert (again.canary_uri, again.canary_percent) == ("models:/credit/2", 25.5)
    moved = credit.update_deployment("credit", model="models:/credit/1", shadow=None)
    assert (moved.model_uri, moved.shadow_uri, moved.description) == (
        "models:/credit/1",
        None,
        "loans",
    )
    assert credit.get_deployment("credit") == moved

    gone = credit.delete_deployment("credit")
    assert gone.name == "credit"
    with pytest.raises(NotFound, match="deployment"):
        credit.get_deployment("credit")
    assert [d.name for d in credit.list_deployments()] == ["batch"]

    actions = [e.action for e in credit.audit_events(object_type="deployment", object_id="credit")]
    assert actions == [
        "deployment.create",
        "deployment.update",
        "deployment.update",
        "deployment.update",
        "deployment.delete",
    ]


#: Arguments of create_deployment (beside a good name and model), and what the error says.
BAD_DEFINITIONS = [
    ({"name": "a/b"}, "deployment name"),
    ({"name": ""}, "deployment name"),
    ({"model": "credit"}, "model of a deployment must be a model URI"),
    ({"canary": "models:credit", "canary_percent": 5}, "canary"),
    ({"canary": "models:/credit@challenger"}, "needs canary_percent"),
    ({"canary_percent": 10}, "needs a canary"),
    ({"canary": "models:/credit@challenger", "canary_percent": 0}, "greater than 0"),
    ({"canary": "models:/credit@challenger", "canary_percent": 100}, "less than 100"),
    ({"canary": "models:/credit@challenger", "canary_percent": True}, "canary_percent"),
    ({"canary": "models:/credit@challenger", "canary_percent": math.nan}, "canary_percent"),
    ({"canary": "models:/credit@challenger", "canary_percent": "10"}, "canary_percent"),
    ({"canary": "models:/credit@champion", "canary_percent": 10}, "own model"),
    ({"shadow": "models:/credit@champion"}, "own model"),
    ({"description": 3}, "description"),
]


def test_bad_definitions_are_refused(credit: sy.Client) -> None:
    for arguments, message in BAD_DEFINITIONS:
        given = {"name": "credit", "model": "models:/credit@champion", **arguments}
        with pytest.raises(InvalidInput, match=message):
            credit.create_deployment(given.pop("name"), given.pop("model"), **given)
    assert credit.list_deployments() == []


def test_missing_models_names_and_duplicates(credit: sy.Client) -> None:
    with pytest.raises(NotFound, match="registered model 'nope'"):
        credit.create_deployment("credit", "models:/nope@champion")
    with pytest.raises(NotFound, match="credit@gold"):
        credit.create_deployment("credit", "models:/credit@gold")
    with pytest.raises(NotFound, match="credit/9"):
        credit.create_deployment("credit", "models:/credit/1", shadow="models:/credit/9")
    credit.create_deployment("credit", "models:/credit@champion")
    with pytest.raises(AlreadyExists):
        credit.create_deployment("credit", "models:/credit/1")
    with pytest.raises(NotFound):
        credit.update_deployment("other", canary=None)
    with pytest.raises(NotFound):
        credit.delete_deployment("other")
    with pytest.raises(InvalidInput, match="always serves a model"):
        credit.update_deployment("credit", model=None)
    with pytest.raises(InvalidInput, match="needs canary_percent"):
        credit.update_deployment("credit", canary="models:/credit/2")
    with pytest.raises(InvalidInput, match="needs a canary"):
        credit.update_deployment("credit", canary_percent=5)
    with pytest.raises(NotFound, match="credit/7"):
        credit.update_deployment("credit", canary="models:/credit/7", canary_percent=5)
    assert credit.get_deployment("credit").canary_uri is None
