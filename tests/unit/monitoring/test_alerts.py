"""Alert rules: parsing, evaluation over stored windows, opening and closing alerts, audit."""

from __future__ import annotations

import concurrent.futures
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

import shipyard as sy
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.monitoring._alerts import RuleSpec, evaluate_rules, parse_rule
from shipyard.store import alerts as alerts_repo
from shipyard.store._schema import monitor_results, monitor_windows, monitors

WINDOW_MS = 3_600_000
T0 = 1_790_000_000_000


def make_client(store_uri: str, root: Path, **settings: Any) -> sy.Client:
    return sy.Client(
        settings=Settings.load(
            uri=store_uri, artifacts=str(root / "blobs"), home=str(root / "home"), **settings
        )
    )


def add_monitor(client: sy.Client, name: str = "credit-drift", deployment: str = "credit") -> int:
    """A monitor row as the monitor runner's store would write it; its id."""
    with client.store.write("tester") as tx:
        return tx.conn.execute(
            insert(monitors)
            .values(
                name=name,
                deployment=deployment,
                reference="dataset:credit@1",
                window_rows=100,
                created_at=T0,
                created_by="tester",
            )
            .returning(monitors.c.id)
        ).scalar_one()


def add_window(
    client: sy.Client,
    monitor_id: int,
    number: int,
    *,
    drift_share: float | None = None,
    metrics: Mapping[str, Any] | None = None,
    columns: Mapping[str, bool | None] | None = None,
) -> None:
    """One evaluated window with its per-column results, as the monitor runner stores it."""
    with client.store.write("tester") as tx:
        window_id = tx.conn.execute(
            insert(monitor_windows)
            .values(
                monitor_id=monitor_id,
                number=number,
                start=T0 + number * WINDOW_MS,
                end=T0 + (number + 1) * WINDOW_MS,
                rows=100,
                labelled=0 if metrics is None else 100,
                drift_share=drift_share,
                metrics=None if metrics is None else json.dumps(metrics),
                evaluated_at=T0 + (number + 1) * WINDOW_MS,
            )
            .returning(monitor_windows.c.id)
        ).scalar_one()
        for column, drift in (columns or {}).items():
            tx.conn.execute(
                insert(monitor_results).values(
                    window_id=window_id,
                    kind="input",
                    column=column,
                    test="ks",
                    statistic=0.5,
                    p_value=0.01 if drift else 0.5,
                    threshold=0.05,
                    drift=drift,
                    status="ok" if drift is not None else "too_few_values",
                )
            )


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return make_client(store_uri, tmp_path)


@pytest.fixture
def monitor_id(client: sy.Client) -> int:
    return add_monitor(client)


# ------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("drift_share > 0.3 for 2 windows", RuleSpec("drift_share", ">", 0.3, 2)),
        ("roc_auc < 0.8", RuleSpec("roc_auc", "<", 0.8, 1)),
        ("  accuracy<=.75   FOR 1 window ", RuleSpec("accuracy", "<=", 0.75, 1)),
        ("drift:income >= 1 for 3 windows", RuleSpec("drift:income", ">=", 1.0, 3)),
        ("r2 < -1e-1", RuleSpec("r2", "<", -0.1, 1)),
    ],
)
def test_rules_parse_from_their_human_form(text: str, spec: RuleSpec) -> None:
    assert parse_rule(text) == spec


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", "non-empty"),
        ("> 0.3", "does not start with a metric"),
        ("drift_share = 0.3", "must be followed by <, <=, > or >="),
        ("drift_share > high", "threshold after '>' must be a number"),
        ("drift_share > 0.3 for two windows", "number of windows must be a whole number"),
        ("drift_share > 0.3 during 2 windows", "'during 2 windows' should read 'for N windows'"),
        ("drift_share > 0.3 for 0 windows", "from 1 to 1000; got 0"),
        ("auc < 0.8", "got 'auc'"),
        ("drift_share > 1e999", "finite number"),
    ],
)
def test_a_bad_rule_names_the_part_that_is_wrong(text: str, names: str) -> None:
    with pytest.raises(InvalidInput, match=names.replace("(", r"\(")) as caught:
        parse_rule(text)
    assert caught.value.hint
    assert "drift_share > 0.3 for 2 windows" in caught.value.hint


# ---------------------------------------------------------------------- rules, CRUD


def test_rules_are_created_listed_and_deleted_with_audit(
    client: sy.Client, monitor_id: int
) -> None:
    first = client.create_alert_rule("credit-drift", "drift_share > 0.3 for 2 windows")
    second = client.create_alert_rule("credit-drift", ("roc_auc", "<", 0.8), name="auc dropped")
    assert (first.name, first.metric, first.op, first.threshold, first.for_windows) == (
        "drift_share > 0.3 for 2 windows",
        "drift_share",
        ">",
        0.3,
        2,
    )
    assert (first.monitor, first.deployment, first.webhook_url) == ("credit-drift", "credit", None)
    assert second.text == "roc_auc < 0.8 for 1 window"
    assert client.list_alert_rules() == [first, second]
    assert client.list_alert_rules("credit-drift") == [first, second]
    assert client.delete_alert_rule(first.id) == first
    assert client.list_alert_rules() == [second]
    actions = [(e.action, e.object_id) for e in client.audit_events(object_type="alert_rule")]
    assert actions == [
        ("alert_rule.create", str(first.id)),
        ("alert_rule.create", str(second.id)),
        ("alert_rule.delete", str(first.id)),
    ]


def test_bad_rule_arguments_raise_typed_errors(client: sy.Client, monitor_id: int) -> None:
    with pytest.raises(NotFound, match="No monitor 'nope'"):
        client.create_alert_rule("nope", "roc_auc < 0.8")
    with pytest.raises(NotFound, match="No monitor 'nope'"):
        client.list_alerts(monitor="nope")
    with pytest.raises(InvalidInput, match="tuple"):
        client.create_alert_rule("credit-drift", 0.8)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="operator"):
        client.create_alert_rule("credit-drift", ("roc_auc", "==", 0.8))
    with pytest.raises(InvalidInput, match="threshold must be a finite number"):
        client.create_alert_rule("credit-drift", ("roc_auc", "<", 10**400))
    with pytest.raises(InvalidInput, match="window count"):
        client.create_alert_rule("credit-drift", ("roc_auc", "<", 0.8, True))
    with pytest.raises(InvalidInput, match="alert rule name"):
        client.create_alert_rule("credit-drift", "roc_auc < 0.8", name="")
    with pytest.raises(InvalidInput, match="alert rule id"):
        client.delete_alert_rule("1")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="No alert rule 99"):
        client.delete_alert_rule(99)
    with pytest.raises(InvalidInput, match="alert status"):
        client.list_alerts(status="shut")
    client.create_alert_rule("credit-drift", "roc_auc < 0.8")
    with pytest.raises(AlreadyExists, match=r"credit-drift/roc_auc < 0\.8 for 1 window"):
        client.create_alert_rule("credit-drift", "roc_auc<0.8")


def test_a_webhook_must_be_an_allowed_http_url(
    store_uri: str, tmp_path: Path, monitor_id: int
) -> None:
    client = make_client(store_uri, tmp_path, webhook_allow=("hooks.example.com",))
    for url, says in [
        ("ftp://hooks.example.com/x", "scheme 'ftp'"),
        ("https://user:secret@hooks.example.com/x", "user name or password"),
        ("https:///x", "names no host"),
        ("https://hooks.example.com/a b", "white space"),
        ("https://hooks.example.com/ä", "outside ASCII"),
        ("https://hooks.example.com:99999/x", "cannot be read"),
        ("https://evil.example.com/x", "'evil.example.com' (port 443) is not on the allow-list"),
    ]:
        with pytest.raises(InvalidInput, match=says.replace("(", r"\(").replace(")", r"\)")):
            client.create_alert_rule("credit-drift", "roc_auc < 0.8", webhook=url)
    rule = client.create_alert_rule(
        "credit-drift", "roc_auc < 0.8", webhook="https://hooks.example.com/shipyard?t=secret"
    )
    assert rule.webhook_url == "https://hooks.example.com/shipyard?t=secret"
    (event,) = client.audit_events(object_type="alert_rule")
    assert json.loads(event.payload)["webhook"] == "hooks.example.com"  # never the URL's secret


# ----------------------------------------------------------------------- evaluation


def test_drift_share_for_two_windows_opens_then_closes_once(
    client: sy.Client, monitor_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    rule = client.create_alert_rule("credit-drift", "drift_share > 0.3 for 2 windows")
    add_window(client, monitor_id, 1, drift_share=0.5)
    assert evaluate_rules(client, monitor_id) == []  # one window of two
    add_window(client, monitor_id, 2, drift_share=0.6)
    with caplog.at_level(logging.INFO, logger="shipyard.alerts"):
        (opened,) = evaluate_rules(client, monitor_id)
    assert (opened.status, opened.rule_id, opened.opened_window, opened.value) == (
        "open",
        rule.id,
        2,
        0.6,
    )
    for part in ("drift_share > 0.3 for 2 windows", "0.5, 0.6", "windows 1-2", "'credit-drift'"):
        assert part in opened.message
    assert "deployment 'credit'" in opened.message
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert opened.message in record.getMessage()
    assert opened.notified_at is None
    assert opened.notify_error is None

    assert evaluate_rules(client, monitor_id) == []  # idempotent
    add_window(client, monitor_id, 3, drift_share=0.7)
    assert evaluate_rules(client, monitor_id) == []  # still firing, still the one alert

    add_window(client, monitor_id, 4, drift_share=0.1)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="shipyard.alerts"):
        (closed,) = evaluate_rules(client, monitor_id)
    assert (closed.id, closed.status, closed.closed_window) == (opened.id, "closed", 4)
    assert caplog.records[0].levelno == logging.INFO
    assert "no longer fires" in caplog.records[0].getMessage()
    assert evaluate_rules(client, monitor_id) == []
    assert client.list_alerts() == [closed]
    assert client.list_alerts(status="open") == []
    assert client.list_alerts(monitor="credit-drift", status="closed") == [closed]
    actions = [e.action for e in client.audit_events(object_type="alert")]
    assert actions == ["alert.open", "alert.close"]


def test_windows_without_labels_neither_fire_nor_reset_a_performance_rule(
    client: sy.Client, monitor_id: int
) -> None:
    client.create_alert_rule("credit-drift", "roc_auc < 0.8 for 2 windows")
    add_window(client, monitor_id, 1, drift_share=0.0, metrics={"roc_auc": 0.7})
    add_window(client, monitor_id, 2, drift_share=0.0)  # no labels yet
    add_window(client, monitor_id, 3, drift_share=0.0, metrics={"roc_auc": None})
    assert evaluate_rules(client, monitor_id) == []
    add_window(client, monitor_id, 4, drift_share=0.0, metrics={"roc_auc": 0.75, "accuracy": 0.9})
    (opened,) = evaluate_rules(client, monitor_id)
    assert (opened.opened_window, opened.value) == (4, 0.75)
    assert "windows 1-4" in opened.message
    add_window(client, monitor_id, 5, drift_share=0.0)  # unlabelled: the alert stays open
    assert evaluate_rules(client, monitor_id) == []
    add_window(client, monitor_id, 6, drift_share=0.0, metrics={"roc_auc": 0.95})
    (closed,) = evaluate_rules(client, monitor_id)
    assert (closed.status, closed.closed_window) == ("closed", 6)


def test_a_column_drift_rule_reads_that_columns_results(client: sy.Client, monitor_id: int) -> None:
    client.create_alert_rule("credit-drift", "drift:income >= 1")
    add_window(client, monitor_id, 1, drift_share=0.5, columns={"income": False, "age": True})
    assert evaluate_rules(client, monitor_id) == []
    add_window(client, monitor_id, 2, drift_share=0.5, columns={"income": True, "age": False})
    (opened,) = evaluate_rules(client, monitor_id)
    assert (opened.opened_window, opened.value) == (2, 1.0)
    add_window(client, monitor_id, 3, drift_share=0.0, columns={"income": None})  # not tested
    assert evaluate_rules(client, monitor_id) == []
    add_window(client, monitor_id, 4, drift_share=0.0, columns={"income": False})
    (closed,) = evaluate_rules(client, monitor_id)
    assert closed.status == "closed"


def test_a_rule_fires_again_after_closing_with_a_new_alert(
    client: sy.Client, monitor_id: int
) -> None:
    client.create_alert_rule("credit-drift", "drift_share >= 0.5")
    for number, share in enumerate((0.5, 0.1, 0.9), start=1):
        add_window(client, monitor_id, number, drift_share=share)
        evaluate_rules(client, monitor_id)
    alerts = client.list_alerts()
    assert [(a.status, a.opened_window, a.closed_window) for a in alerts] == [
        ("open", 3, None),
        ("closed", 1, 2),
    ]


def test_rules_of_other_monitors_are_left_alone(client: sy.Client, monitor_id: int) -> None:
    other = add_monitor(client, "other", deployment="fraud")
    client.create_alert_rule("other", "drift_share > 0.1")
    add_window(client, other, 1, drift_share=0.9)
    add_window(client, monitor_id, 1, drift_share=0.9)
    assert evaluate_rules(client, monitor_id) == []
    (opened,) = evaluate_rules(client, other)
    assert (opened.monitor, opened.deployment) == ("other", "fraud")
    assert client.list_alerts(monitor="credit-drift") == []


def test_deleting_a_rule_deletes_its_alerts(client: sy.Client, monitor_id: int) -> None:
    rule = client.create_alert_rule("credit-drift", "drift_share > 0.1")
    add_window(client, monitor_id, 1, drift_share=0.9)
    evaluate_rules(client, monitor_id)
    client.delete_alert_rule(rule.id)
    assert client.list_alerts() == []
    (event,) = [e for e in client.audit_events(object_type="alert_rule") if "delete" in e.action]
    assert json.loads(event.payload)["alerts"] == 1


def test_two_runners_evaluating_at_once_open_one_alert(
    client: sy.Client, monitor_id: int, store_uri: str, tmp_path: Path
) -> None:
    client.create_alert_rule("credit-drift", "drift_share > 0.1")
    add_window(client, monitor_id, 1, drift_share=0.9)
    others = [make_client(store_uri, tmp_path / str(i)) for i in range(2)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        changed = list(pool.map(lambda c: evaluate_rules(c, monitor_id), others))
    assert sorted(len(c) for c in changed) == [0, 1]
    assert len(client.list_alerts()) == 1


def test_a_rule_deleted_during_the_evaluation_is_skipped(
    client: sy.Client, monitor_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = client.create_alert_rule("credit-drift", "drift_share > 0.1")
    kept = client.create_alert_rule("credit-drift", "drift_share > 0.2")
    add_window(client, monitor_id, 1, drift_share=0.9)
    real = alerts_repo.rules_of_monitor

    def listed_then_deleted(conn: Any, monitor: int) -> Any:
        found = real(conn, monitor)
        client.delete_alert_rule(gone.id)
        return found

    monkeypatch.setattr(alerts_repo, "rules_of_monitor", listed_then_deleted)
    (opened,) = evaluate_rules(client, monitor_id)
    assert opened.rule_id == kept.id
