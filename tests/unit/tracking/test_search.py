"""search_runs: filters, ordering and pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

import shipyard as sy
from shipyard.errors import InvalidInput, NotFound


@pytest.fixture
def client(store_uri: str) -> sy.Client:
    client = sy.Client(store_uri)
    rows = [
        ("lr-a", {"model": "lr", "C": "0.1"}, {"team": "risk"}, {"auc": 0.95, "loss": 0.2}),
        ("lr-b", {"model": "lr", "C": "1"}, {"team": "risk"}, {"auc": 0.85, "loss": 0.3}),
        ("rf-a", {"model": "rf"}, {"team": "growth"}, {"auc": 0.97}),
        ("rf-b", {"model": "rf"}, {"team": "risk"}, {"auc": math.nan}),
        ("gb-a", {"model": "gb"}, {}, {"loss": 0.1}),
    ]
    for name, params, tags, metrics in rows:
        run = client.create_run("credit", name=name, tags=tags)
        client.log_batch(
            run.run_id, params=params, metrics=[(k, v, 0, 1) for k, v in metrics.items()]
        )
    client.create_run("other", name="elsewhere")
    return client


def names(page: sy.RunPage) -> list[str]:
    return [run.name for run in page.runs]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("metrics.auc > 0.9", {"lr-a", "rf-a"}),
        ("metrics.auc > 0.9 and params.model = 'lr' and tags.team = 'risk'", {"lr-a"}),
        ("metrics.auc >= 0.85 AND metrics.auc < 0.96", {"lr-a", "lr-b"}),
        ("params.model = 'rf' or metrics.loss <= 0.1", {"rf-a", "rf-b", "gb-a"}),
        ("params.model IN ('gb', 'rf') and tags.team != 'growth'", {"rf-b"}),
        ("params.model NOT IN ('lr')", {"rf-a", "rf-b", "gb-a"}),
        ("attributes.run_name LIKE 'lr-%'", {"lr-a", "lr-b"}),
        ("run_name ILIKE 'RF%'", {"rf-a", "rf-b"}),
        ("(params.model = 'lr' or params.model = 'gb') and metrics.loss > 0.15", {"lr-a", "lr-b"}),
        ("metrics.auc != 0.95", {"lr-b", "rf-a"}),  # NaN compares false to everything
        ("tags.`team` = 'growth'", {"rf-a"}),
        ("status = 'RUNNING'", {"lr-a", "lr-b", "rf-a", "rf-b", "gb-a"}),
        ("metrics.nothing > 0", set()),
    ],
)
def test_filters_select_the_matching_runs(
    client: sy.Client, query: str, expected: set[str]
) -> None:
    assert set(names(client.search_runs("credit", filter=query))) == expected


def test_order_by_metric_descending_puts_runs_without_it_last(client: sy.Client) -> None:
    page = client.search_runs("credit", order_by=["metrics.auc DESC"])
    assert names(page)[:3] == ["rf-a", "lr-a", "lr-b"]
    assert set(names(page)[3:]) == {"rf-b", "gb-a"}


def test_order_by_param_then_name(client: sy.Client) -> None:
    page = client.search_runs("credit", order_by=["params.model", "attributes.run_name DESC"])
    assert names(page) == ["gb-a", "lr-b", "lr-a", "rf-b", "rf-a"]


def test_default_order_is_newest_first_and_experiment_none_means_all(client: sy.Client) -> None:
    assert names(client.search_runs())[0] == "elsewhere"
    assert len(client.search_runs(["credit", "other"]).runs) == 6


def test_pages_cover_every_run_once(client: sy.Client) -> None:
    seen: list[str] = []
    token = None
    for _ in range(10):
        page = client.search_runs("credit", max_results=2, page_token=token)
        seen += names(page)
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == sorted(["lr-a", "lr-b", "rf-a", "rf-b", "gb-a"])


@pytest.mark.parametrize(
    "bad",
    [
        "metrics.auc >",
        "metrics.auc = 'high'",
        "params.C > 1",
        "auc > 1",
        "metrics.auc > 1 and",
        "(metrics.auc > 1",
        "metrics.auc > 1 metrics.loss < 2",
        "nonsense.auc > 1",
        "attributes.colour = 'red'",
        "params.model IN 'lr'",
        "params.model = lr",
        "metrics.auc ~ 1",
    ],
)
def test_malformed_filters_are_invalid_input_with_position(client: sy.Client, bad: str) -> None:
    with pytest.raises(InvalidInput, match="at character"):
        client.search_runs("credit", filter=bad)


@pytest.mark.parametrize(
    "bad", [["metrics.auc SIDEWAYS"], ["colour DESC"], ["metrics.a metrics.b"]]
)
def test_bad_order_by_is_invalid_input(client: sy.Client, bad: list[str]) -> None:
    with pytest.raises(InvalidInput):
        client.search_runs("credit", order_by=bad)


@pytest.mark.parametrize("bad", [0, -1, 50_001, 2.5, True, "10"])
def test_max_results_out_of_range_is_invalid_input(client: sy.Client, bad: object) -> None:
    with pytest.raises(InvalidInput, match="max_results"):
        client.search_runs("credit", max_results=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["garbage", "eyJvZmZzZXQiOiAtMX0=", "e30="])
def test_bad_page_token_is_invalid_input(client: sy.Client, bad: str) -> None:
    with pytest.raises(InvalidInput, match="page_token"):
        client.search_runs("credit", page_token=bad)


def test_unknown_experiment_in_search_is_not_found(client: sy.Client) -> None:
    with pytest.raises(NotFound):
        client.search_runs("missing")
