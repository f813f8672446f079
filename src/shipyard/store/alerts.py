"""Alert rules on monitors and the alerts they open: rows, reads, and the window values rules read.

A rule belongs to one monitor and is addressed by its id. An alert belongs to
one rule; at most one alert per rule is open at a time, which
:func:`open_alert` keeps true by locking the rule's row (PostgreSQL; SQLite's
write transactions are serial already) before it looks for an open one.
Creating and deleting rules, opening and closing alerts and recording a
notification's outcome are audited.
"""

from __future__ import annotations

import dataclasses
import json
import math
import urllib.parse

from sqlalchemy import Connection, Integer, Row, cast, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc

from shipyard.errors import AlreadyExists, NotFound
from shipyard.store._schema import alert_rules, alerts, monitor_results, monitor_windows, monitors
from shipyard.store._store import WriteTx
from shipyard.store.runs import now_ms

ALERT_STATUSES = ("open", "closed")
_RULE_HINT = "List rules with `shipyard alerts rules list`."
_MONITOR_HINT = "List monitors with `shipyard monitors list`."
#: Windows read per query while looking back for the last N with a value.
_WINDOW_PAGE = 200


def rule_text(metric: str, op: str, threshold: float, for_windows: int) -> str:
    """A rule as a person writes it: ``drift_share > 0.3 for 2 windows``."""
    plural = "window" if for_windows == 1 else "windows"
    return f"{metric} {op} {threshold:g} for {for_windows} {plural}"


@dataclasses.dataclass(frozen=True)
class AlertRule:
    id: int
    monitor: str
    deployment: str
    name: str
    #: "drift_share", a live performance metric ("roc_auc", ...) or "drift:<column>".
    metric: str
    op: str
    threshold: float
    #: How many of the latest windows with a value must all satisfy the condition.
    for_windows: int
    webhook_url: str | None
    created_at: int
    created_by: str

    @property
    def text(self) -> str:
        return rule_text(self.metric, self.op, self.threshold, self.for_windows)


@dataclasses.dataclass(frozen=True)
class Alert:
    id: int
    rule_id: int
    rule: str  # the rule's name
    monitor: str
    deployment: str
    status: str  # "open" or "closed"
    opened_at: int
    opened_window: int  # the number of the latest window that made the rule fire
    closed_at: int | None
    closed_window: int | None
    value: float | None  # the metric's value in ``opened_window``
    message: str
    notified_at: int | None
    notify_error: str | None


@dataclasses.dataclass(frozen=True)
class WindowValue:
    """One window's value of a rule's metric."""

    number: int
    start: int
    end: int
    value: float


# ------------------------------------------------------------------------ monitors


def monitor_row(conn: Connection, name: str) -> Row:
    row = conn.execute(select(monitors).where(monitors.c.name == name)).first()
    if row is None:
        raise NotFound("monitor", name, hint=_MONITOR_HINT)
    return row


# --------------------------------------------------------------------------- rules


def _rules_query():  # type: ignore[no-untyped-def]
    return select(
        alert_rules, monitors.c.name.label("monitor"), monitors.c.deployment.label("deployment")
    ).join(monitors, monitors.c.id == alert_rules.c.monitor_id)


def _rule(row: Row) -> AlertRule:
    return AlertRule(
        id=row.id,
        monitor=row.monitor,
        deployment=row.deployment,
        name=row.name,
        metric=row.metric,
        op=row.op,
        threshold=row.threshold,
        for_windows=row.for_windows,
        webhook_url=row.webhook_url,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def create_rule(
    tx: WriteTx,
    monitor: str,
    *,
    name: str,
    metric: str,
    op: str,
    threshold: float,
    for_windows: int,
    webhook_url: str | None,
) -> AlertRule:
    """Add a rule to ``monitor`` (its name); names are unique per monitor."""
    monitor_id = monitor_row(tx.conn, monitor).id
    try:
        with tx.conn.begin_nested():
            rule_id = tx.conn.execute(
                insert(alert_rules)
                .values(
                    monitor_id=monitor_id,
                    name=name,
                    metric=metric,
                    op=op,
                    threshold=threshold,
                    for_windows=for_windows,
                    webhook_url=webhook_url,
                    created_at=now_ms(),
                    created_by=tx.actor,
                )
                .returning(alert_rules.c.id)
            ).scalar_one()
    except sa_exc.IntegrityError as exc:
        raise AlreadyExists(
            "alert rule",
            f"{monitor}/{name}",
            hint="Give it another --name, or delete the old rule first "
            "(`shipyard alerts rules delete RULE_ID`).",
        ) from exc
    rule = get_rule(tx.conn, rule_id)
    tx.audit(
        "alert_rule.create",
        "alert_rule",
        str(rule_id),
        # The webhook's host only: a URL's path or query may carry a secret token.
        {"monitor": monitor, "name": name, "rule": rule.text, "webhook": _host_of(webhook_url)},
    )
    return rule


def _host_of(url: str | None) -> str | None:
    return None if url is None else urllib.parse.urlsplit(url).hostname


def get_rule(conn: Connection, rule_id: int) -> AlertRule:
    row = conn.execute(_rules_query().where(alert_rules.c.id == rule_id)).first()
    if row is None:
        raise NotFound("alert rule", rule_id, hint=_RULE_HINT)
    return _rule(row)


def list_rules(conn: Connection, monitor: str | None = None) -> list[AlertRule]:
    query = _rules_query()
    if monitor is not None:
        query = query.where(alert_rules.c.monitor_id == monitor_row(conn, monitor).id)
    return [_rule(row) for row in conn.execute(query.order_by(alert_rules.c.id))]


def rules_of_monitor(conn: Connection, monitor_id: int) -> list[AlertRule]:
    query = _rules_query().where(alert_rules.c.monitor_id == monitor_id)
    return [_rule(row) for row in conn.execute(query.order_by(alert_rules.c.id))]


def delete_rule(tx: WriteTx, rule_id: int) -> AlertRule:
    """Delete a rule and its alerts (their opening and closing stay in the audit trail)."""
    rule = get_rule(tx.conn, rule_id)
    removed = tx.conn.execute(delete(alerts).where(alerts.c.rule_id == rule_id)).rowcount
    tx.conn.execute(delete(alert_rules).where(alert_rules.c.id == rule_id))
    tx.audit(
        "alert_rule.delete",
        "alert_rule",
        str(rule_id),
        {"monitor": rule.monitor, "name": rule.name, "rule": rule.text, "alerts": removed},
    )
    return rule


def delete_rules_of_monitor(tx: WriteTx, monitor_id: int) -> int:
    """Delete every rule of a monitor and their alerts (for deleting the monitor); how many."""
    rule_ids = list(
        tx.conn.execute(select(alert_rules.c.id).where(alert_rules.c.monitor_id == monitor_id))
        .scalars()
        .all()
    )
    for rule_id in rule_ids:
        delete_rule(tx, rule_id)
    return len(rule_ids)


# -------------------------------------------------------------------------- alerts


def _alerts_query():  # type: ignore[no-untyped-def]
    return (
        select(
            alerts,
            alert_rules.c.name.label("rule"),
            monitors.c.name.label("monitor"),
            monitors.c.deployment.label("deployment"),
        )
        .join(alert_rules, alert_rules.c.id == alerts.c.rule_id)
        .join(monitors, monitors.c.id == alert_rules.c.monitor_id)
    )


def _alert(row: Row) -> Alert:
    return Alert(
        id=row.id,
        rule_id=row.rule_id,
        rule=row.rule,
        monitor=row.monitor,
        deployment=row.deployment,
        status=row.status,
        opened_at=row.opened_at,
        opened_window=row.opened_window,
        closed_at=row.closed_at,
        closed_window=row.closed_window,
        value=row.value,
        message=row.message,
        notified_at=row.notified_at,
        notify_error=row.notify_error,
    )


def get_alert(conn: Connection, alert_id: int) -> Alert:
    row = conn.execute(_alerts_query().where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound("alert", alert_id, hint="List alerts with `shipyard alerts list`.")
    return _alert(row)


def list_alerts(
    conn: Connection, monitor: str | None = None, status: str | None = None
) -> list[Alert]:
    """Alerts, newest first; ``status`` "open" or "closed" (None for both)."""
    query = _alerts_query()
    if monitor is not None:
        query = query.where(alert_rules.c.monitor_id == monitor_row(conn, monitor).id)
    if status is not None:
        query = query.where(alerts.c.status == status)
    return [_alert(row) for row in conn.execute(query.order_by(alerts.c.id.desc()))]


def open_alert_of(tx: WriteTx, rule_id: int) -> Alert | None:
    """The rule's open alert, if any, with the rule's row locked until the transaction ends."""
    locked = tx.conn.execute(
        select(alert_rules.c.id).where(alert_rules.c.id == rule_id).with_for_update()
    ).scalar()
    if locked is None:
        raise NotFound("alert rule", rule_id, hint=_RULE_HINT)
    row = tx.conn.execute(
        _alerts_query().where(alerts.c.rule_id == rule_id, alerts.c.status == "open")
    ).first()
    return None if row is None else _alert(row)


def open_alert(tx: WriteTx, rule: AlertRule, *, window: int, value: float, message: str) -> Alert:
    """Insert an open alert; call :func:`open_alert_of` first in the same transaction."""
    alert_id = tx.conn.execute(
        insert(alerts)
        .values(
            rule_id=rule.id,
            status="open",
            opened_at=now_ms(),
            opened_window=window,
            value=value,
            message=message,
        )
        .returning(alerts.c.id)
    ).scalar_one()
    tx.audit(
        "alert.open",
        "alert",
        str(alert_id),
        {"rule_id": rule.id, "monitor": rule.monitor, "window": window, "value": value},
    )
    return get_alert(tx.conn, alert_id)


def close_alert(tx: WriteTx, alert: Alert, *, window: int | None) -> Alert:
    tx.conn.execute(
        update(alerts)
        .where(alerts.c.id == alert.id)
        .values(status="closed", closed_at=now_ms(), closed_window=window)
    )
    tx.audit(
        "alert.close",
        "alert",
        str(alert.id),
        {"rule_id": alert.rule_id, "monitor": alert.monitor, "window": window},
    )
    return get_alert(tx.conn, alert.id)


def record_notification(tx: WriteTx, alert_id: int, error: str | None) -> Alert:
    """When the alert was last notified, and why the webhook failed (None: it did not)."""
    tx.conn.execute(
        update(alerts)
        .where(alerts.c.id == alert_id)
        .values(notified_at=now_ms(), notify_error=error)
    )
    tx.audit("alert.notify", "alert", str(alert_id), {"error": error})
    return get_alert(tx.conn, alert_id)


@dataclasses.dataclass(frozen=True)
class MonitorStatus:
    """What ``/metrics`` shows of one monitor: its latest window's values and open alerts."""

    monitor: str
    drift_share: float | None  # of the newest window with one
    #: (kind, column) -> whether it drifted, in that same window (untested columns left out).
    column_drift: dict[tuple[str, str], bool]
    #: The newest window's live performance metrics (windows without labels have none).
    metrics: dict[str, float]
    open_alerts: int


def monitor_statuses(conn: Connection, deployment: str) -> list[MonitorStatus]:
    """The status of every monitor of ``deployment``, by monitor name (a few queries each)."""
    counted = (
        select(alert_rules.c.monitor_id, func.count(alerts.c.id))
        .join(alerts, alerts.c.rule_id == alert_rules.c.id)
        .join(monitors, monitors.c.id == alert_rules.c.monitor_id)
        .where(monitors.c.deployment == deployment, alerts.c.status == "open")
        .group_by(alert_rules.c.monitor_id)
    )
    open_counts = {row[0]: row[1] for row in conn.execute(counted)}
    found = []
    query = select(monitors.c.id, monitors.c.name).where(monitors.c.deployment == deployment)
    for monitor_id, name in conn.execute(query.order_by(monitors.c.name)).all():
        newest = select(monitor_windows).where(monitor_windows.c.monitor_id == monitor_id)
        newest = newest.order_by(monitor_windows.c.number.desc()).limit(1)
        drift = conn.execute(newest.where(monitor_windows.c.drift_share.is_not(None))).first()
        column_drift: dict[tuple[str, str], bool] = {}
        if drift is not None:
            results = select(
                monitor_results.c.kind, monitor_results.c.column, monitor_results.c.drift
            ).where(monitor_results.c.window_id == drift.id, monitor_results.c.drift.is_not(None))
            column_drift = {(k, c): bool(d) for k, c, d in conn.execute(results)}
        performance = conn.execute(newest.where(monitor_windows.c.metrics.is_not(None))).first()
        metrics = {} if performance is None else finite_metrics(performance.metrics)
        found.append(
            MonitorStatus(
                monitor=name,
                drift_share=None if drift is None else drift.drift_share,
                column_drift=column_drift,
                metrics=metrics,
                open_alerts=open_counts.get(monitor_id, 0),
            )
        )
    return found


# ------------------------------------------------------------------ window values


def latest_values(conn: Connection, monitor_id: int, metric: str, count: int) -> list[WindowValue]:
    """The last ``count`` windows (by number, newest first) that have a value of ``metric``.

    ``drift_share`` is the window's drift share; ``drift:<column>`` is 1 when
    that column (input or prediction) drifted in the window and 0 when it was
    tested and did not; any other name is read from the window's live
    performance metrics, which windows without labels do not have.
    """
    if metric.startswith("drift:"):
        return _column_drift(conn, monitor_id, metric.removeprefix("drift:"), count)
    found: list[WindowValue] = []
    below: int | None = None
    while len(found) < count:
        query = select(
            monitor_windows.c.number,
            monitor_windows.c.start,
            monitor_windows.c.end,
            monitor_windows.c.drift_share,
            monitor_windows.c.metrics,
        ).where(monitor_windows.c.monitor_id == monitor_id)
        if metric == "drift_share":
            query = query.where(monitor_windows.c.drift_share.is_not(None))
        else:
            query = query.where(monitor_windows.c.metrics.is_not(None))
        if below is not None:
            query = query.where(monitor_windows.c.number < below)
        rows = conn.execute(
            query.order_by(monitor_windows.c.number.desc()).limit(_WINDOW_PAGE)
        ).all()
        for row in rows:
            value = (
                row.drift_share
                if metric == "drift_share"
                else finite_metrics(row.metrics).get(metric)
            )
            if value is not None and math.isfinite(value):
                found.append(WindowValue(row.number, row.start, row.end, float(value)))
                if len(found) == count:
                    break
        if len(rows) < _WINDOW_PAGE:
            break
        below = rows[-1].number
    return found


def finite_metrics(text: str) -> dict[str, float]:
    """A window's live metrics JSON, without what was not measured (null, NaN: no labels,
    one class only, ...)."""
    return {
        name: float(value)
        for name, value in json.loads(text).items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def _column_drift(conn: Connection, monitor_id: int, column: str, count: int) -> list[WindowValue]:
    # 1 if the column drifted in any of its kinds (input, prediction) in the window.
    drifted = func.max(cast(monitor_results.c.drift, Integer))
    query = (
        select(
            monitor_windows.c.number,
            monitor_windows.c.start,
            monitor_windows.c.end,
            drifted.label("drifted"),
        )
        .join(monitor_results, monitor_results.c.window_id == monitor_windows.c.id)
        .where(
            monitor_windows.c.monitor_id == monitor_id,
            monitor_results.c.column == column,
            monitor_results.c.drift.is_not(None),
        )
        .group_by(monitor_windows.c.number, monitor_windows.c.start, monitor_windows.c.end)
        .order_by(monitor_windows.c.number.desc())
        .limit(count)
    )
    return [WindowValue(r.number, r.start, r.end, float(r.drifted)) for r in conn.execute(query)]
