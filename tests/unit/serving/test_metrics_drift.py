"""Drift, live metrics and open alerts on /metrics, read from the store at most every N seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import shipyard as sy
from shipyard.monitoring._alerts import evaluate_rules
from shipyard.serving._metrics import MonitoringGauges, ServingMetrics
from unit.monitoring.test_alerts import add_monitor, add_window, make_client


def scrape_until(render: Callable[[], str], line: str, timeout: float = 10.0) -> str:
    """Scrape until ``line`` shows (the first scrapes start the background read)."""
    deadline = time.monotonic() + timeout
    while True:
        text = render()
        if line in text.splitlines():
            return text
        assert time.monotonic() < deadline, text
        time.sleep(0.02)


def stored_monitoring(client: sy.Client) -> int:
    """Monitor ``credit-drift`` of deployment ``credit``: 2 windows, an open alert; its id."""
    monitor_id = add_monitor(client, "credit-drift", deployment="credit")
    add_window(client, monitor_id, 1, drift_share=0.2, metrics={"roc_auc": 0.9})
    add_window(
        client,
        monitor_id,
        2,
        drift_share=0.5,
        columns={"income": True, "age": False, "zip": None},
    )
    client.create_alert_rule("credit-drift", "drift_share > 0.3")
    evaluate_rules(client, monitor_id)
    add_monitor(client, "other", deployment="fraud")  # another deployment's: not shown
    return monitor_id


EXPECTED = [
    'shipyard_monitor_drift_share{deployment="credit",monitor="credit-drift"} 0.5',
    'shipyard_monitor_column_drift{deployment="credit",monitor="credit-drift",kind="input",'
    'column="age"} 0',
    'shipyard_monitor_column_drift{deployment="credit",monitor="credit-drift",kind="input",'
    'column="income"} 1',
    # Window 2 has no labels: the live metric is window 1's.
    'shipyard_monitor_metric{deployment="credit",monitor="credit-drift",metric="roc_auc"} 0.9',
    'shipyard_monitor_open_alerts{deployment="credit",monitor="credit-drift"} 1',
]


def test_the_gauges_show_the_latest_windows_and_open_alerts(client: sy.Client) -> None:
    stored_monitoring(client)
    metrics = ServingMetrics(
        versions=lambda: [], backlog=lambda: {}, monitoring=MonitoringGauges(client, "credit")
    )
    text = scrape_until(metrics.render, EXPECTED[0])
    lines = text.splitlines()
    for line in EXPECTED:
        assert line in lines
    assert "zip" not in text  # not tested: no flag
    assert 'monitor="other"' not in text
    assert "# TYPE shipyard_monitor_drift_share gauge" in lines
    assert any(line.startswith("shipyard_monitor_read_timestamp_seconds{") for line in lines)


@pytest.fixture
def sqlite_client(tmp_path: Path) -> sy.Client:
    """For what does not depend on the store's kind."""
    return make_client(f"sqlite:///{tmp_path / 'gauges.db'}", tmp_path)


def test_the_store_is_read_at_most_once_per_max_age(
    sqlite_client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sqlite_client
    monitor_id = stored_monitoring(client)
    reads: list[str] = []
    from shipyard.store import alerts as alerts_repo

    real = alerts_repo.monitor_statuses

    def counted(conn: Any, deployment: str) -> Any:
        reads.append(deployment)
        return real(conn, deployment)

    monkeypatch.setattr(alerts_repo, "monitor_statuses", counted)
    gauges = MonitoringGauges(client, "credit", max_age=3600)
    render = lambda: "\n".join(gauges.render())  # noqa: E731
    scrape_until(render, EXPECTED[0])
    add_window(client, monitor_id, 3, drift_share=0.0)
    for _ in range(20):
        assert EXPECTED[0] in render().splitlines()  # cached: the new window is not read
    assert reads == ["credit"]

    gauges.max_age = 0.0
    scrape_until(
        render, 'shipyard_monitor_drift_share{deployment="credit",monitor="credit-drift"} 0'
    )
    assert len(reads) >= 2


def test_a_failed_read_keeps_the_last_values(
    sqlite_client: sy.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sqlite_client
    stored_monitoring(client)
    gauges = MonitoringGauges(client, "credit", max_age=0.0)
    render = lambda: "\n".join(gauges.render())  # noqa: E731
    scrape_until(render, EXPECTED[0])
    from shipyard.store import alerts as alerts_repo

    def broken(conn: Any, deployment: str) -> Any:
        raise ConnectionError("store down")

    monkeypatch.setattr(alerts_repo, "monitor_statuses", broken)
    for _ in range(10):
        assert EXPECTED[0] in render().splitlines()
        time.sleep(0.01)


def test_the_serving_app_shows_the_gauges(
    client: sy.Client, registered: Any, serve: Callable[..., Any]
) -> None:
    """``shipyard serve models:/credit@champion`` is deployment ``credit``."""
    api = serve()
    stored_monitoring(client)
    text = scrape_until(lambda: api.get("/metrics").text, EXPECTED[0])
    for line in EXPECTED:
        assert line in text.splitlines()
