"""Alert rules on a monitor's windows: parse them, evaluate them, open and close alerts.

A rule reads one value per evaluated window:

==================  ==========================================================
metric              value of a window
==================  ==========================================================
``drift_share``     the share of tested columns that drifted (0 to 1)
``drift:<column>``  1 if that column (input or prediction) drifted, 0 if it
                    was tested and did not; windows where it was not tested
                    have no value
``roc_auc``, ...    a live performance metric (:data:`PERFORMANCE_METRICS`),
                    from the labels that arrived for the window; windows
                    without labels have no value
==================  ==========================================================

``drift_share > 0.3 for 2 windows`` fires when the last 2 windows that have a
value (by window number) both have a drift share above 0.3; without ``for``
one window is enough. A window without a value neither fires a rule nor
resets it. When a rule fires and has no open alert, an alert opens; when it
stops firing, its open alert closes. Evaluating again without new windows
changes nothing. Every opening and closing is logged (WARNING / INFO on the
``shipyard.alerts`` logger) and, when the rule has a webhook, POSTed to it
(see :mod:`._notify`); a webhook's failure is recorded on the alert as
``notify_error`` and never raised.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import numbers
import operator
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import _notify
from shipyard.store import alerts as alerts_repo
from shipyard.store.alerts import Alert, AlertRule, WindowValue, rule_text

if TYPE_CHECKING:
    from shipyard.store import WriteTx
    from shipyard.tracking import Client

log = logging.getLogger("shipyard.alerts")

PERFORMANCE_METRICS = (
    "accuracy",
    "f1",
    "precision",
    "recall",
    "roc_auc",
    "log_loss",
    "mae",
    "rmse",
    "r2",
)
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
MAX_FOR_WINDOWS = 1000
_EXAMPLE = 'Write e.g. "drift_share > 0.3 for 2 windows", "roc_auc < 0.8" or "drift:income >= 1".'


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    metric: str
    op: str
    threshold: float
    for_windows: int = 1

    @property
    def text(self) -> str:
        return rule_text(self.metric, self.op, self.threshold, self.for_windows)


# ------------------------------------------------------------------------- parsing

_METRIC = re.compile(r"\s*(drift:[^\s<>=]+|[A-Za-z_][A-Za-z0-9_]*)")
_OP = re.compile(r"\s*(<=|>=|<|>)")
_NUMBER = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_FOR = re.compile(r"\s*for\s+(\S+)\s+windows?\s*$", re.IGNORECASE)


def parse_rule(text: Any) -> RuleSpec:
    """``"drift_share > 0.3 for 2 windows"`` -> RuleSpec; InvalidInput names the wrong part."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(
            f"An alert rule must be a non-empty string; got {text!r}.", hint=_EXAMPLE
        )
    found = _METRIC.match(text)
    if found is None:
        raise InvalidInput(
            f"The alert rule {text!r} does not start with a metric name.", hint=_EXAMPLE
        )
    metric, at = found.group(1), found.end()
    found = _OP.match(text, at)
    if found is None:
        raise InvalidInput(
            f"In the alert rule {text!r}, {metric!r} must be followed by <, <=, > or >=; "
            f"got {text[at:].strip()[:20]!r}.",
            hint=_EXAMPLE,
        )
    op, at = found.group(1), found.end()
    found = _NUMBER.match(text, at)
    if found is None:
        raise InvalidInput(
            f"In the alert rule {text!r}, the threshold after {op!r} must be a number; "
            f"got {text[at:].strip()[:20]!r}.",
            hint=_EXAMPLE,
        )
    threshold, at = float(found.group(1)), found.end()
    for_windows = 1
    rest = text[at:]
    if rest.strip():
        found = _FOR.match(rest)
        if found is None:
            raise InvalidInput(
                f"In the alert rule {text!r}, {rest.strip()!r} should read 'for N windows'.",
                hint=_EXAMPLE,
            )
        if not found.group(1).isdigit():
            raise InvalidInput(
                f"In the alert rule {text!r}, the number of windows must be a whole number; "
                f"got {found.group(1)!r}.",
                hint=_EXAMPLE,
            )
        for_windows = int(found.group(1))
    return check_rule(metric, op, threshold, for_windows)


def check_rule(metric: Any, op: Any, threshold: Any, for_windows: Any = 1) -> RuleSpec:
    """A rule's parts checked one by one (the tuple form of ``create_alert_rule``)."""
    if not isinstance(metric, str) or not (
        metric == "drift_share"
        or metric in PERFORMANCE_METRICS
        or (metric.startswith("drift:") and metric[6:].strip() and len(metric) <= 256)
    ):
        raise InvalidInput(
            f"An alert rule's metric must be 'drift_share', 'drift:<column>' or one of "
            f"{', '.join(PERFORMANCE_METRICS)}; got {metric!r}.",
            hint=_EXAMPLE,
        )
    if op not in OPERATORS:
        raise InvalidInput(
            f"An alert rule's operator must be one of {', '.join(OPERATORS)}; got {op!r}.",
            hint=_EXAMPLE,
        )
    if not _finite(threshold):
        shown = repr(threshold) if len(repr(threshold)) <= 40 else repr(threshold)[:37] + "..."
        raise InvalidInput(
            f"An alert rule's threshold must be a finite number; got {shown}.", hint=_EXAMPLE
        )
    if (
        isinstance(for_windows, bool)
        or not isinstance(for_windows, int)
        or not 1 <= for_windows <= MAX_FOR_WINDOWS
    ):
        raise InvalidInput(
            f"An alert rule's window count must be a whole number from 1 to {MAX_FOR_WINDOWS}; "
            f"got {for_windows!r}.",
            hint=_EXAMPLE,
        )
    return RuleSpec(metric, op, float(threshold), for_windows)


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def rule_spec(rule: Any) -> RuleSpec:
    """A rule given as text or as (metric, op, threshold[, for_windows])."""
    if isinstance(rule, str):
        return parse_rule(rule)
    if isinstance(rule, Sequence) and len(rule) in (3, 4):
        return check_rule(*rule)
    raise InvalidInput(
        "An alert rule must be text or a tuple (metric, op, threshold[, for_windows]); "
        f"got {rule!r}.",
        hint=_EXAMPLE,
    )


# ---------------------------------------------------------------------- evaluating


@dataclasses.dataclass(frozen=True)
class _Change:
    alert: Alert
    rule: AlertRule
    windows: list[WindowValue]  # oldest first; empty when the rule has no value any more
    message: str


def evaluate_rules(client: Client, monitor_id: int) -> list[Alert]:
    """Evaluate every rule of monitor ``monitor_id``; the alerts this call opened or closed.

    Called by the monitor runner after it stored windows. Each rule is one
    write transaction that locks the rule, so two runners evaluating at once
    open one alert, not two. Notifications are sent after the commit, and
    their outcome recorded in a transaction of its own.
    """
    with client.store.read() as conn:
        rules = alerts_repo.rules_of_monitor(conn, monitor_id)
    changed: list[Alert] = []
    for rule in rules:
        try:
            with client.store.write(client.actor) as tx:
                change = _evaluate(tx, rule, monitor_id)
        except NotFound as exc:
            if exc.kind != "alert rule":
                raise
            continue  # deleted since it was listed
        if change is not None:
            changed.append(_notify_change(client, change))
    return changed


def _evaluate(tx: WriteTx, rule: AlertRule, monitor_id: int) -> _Change | None:
    open_alert = alerts_repo.open_alert_of(tx, rule.id)  # locks the rule first
    windows = alerts_repo.latest_values(tx.conn, monitor_id, rule.metric, rule.for_windows)
    windows.reverse()
    check = OPERATORS[rule.op]
    fires = len(windows) == rule.for_windows and all(
        check(w.value, rule.threshold) for w in windows
    )
    if fires and open_alert is None:
        message = _opened_message(rule, windows)
        alert = alerts_repo.open_alert(
            tx, rule, window=windows[-1].number, value=windows[-1].value, message=message
        )
        return _Change(alert, rule, windows, message)
    if not fires and open_alert is not None:
        last = windows[-1].number if windows else None
        alert = alerts_repo.close_alert(tx, open_alert, window=last)
        return _Change(alert, rule, windows, _closed_message(rule, windows))
    return None


def _utc(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _where(rule: AlertRule, windows: list[WindowValue]) -> str:
    values = ", ".join(f"{w.value:.4g}" for w in windows)
    first, last = windows[0], windows[-1]
    span = f"window {last.number}" if first is last else f"windows {first.number}-{last.number}"
    return (
        f"{rule.metric} was {values} in {span} ({_utc(first.start)} to {_utc(last.end)}), "
        f"monitor {rule.monitor!r}, deployment {rule.deployment!r}"
    )


def _title(rule: AlertRule) -> str:
    return f"Rule {rule.name!r}" + ("" if rule.name == rule.text else f" ({rule.text})")


def _opened_message(rule: AlertRule, windows: list[WindowValue]) -> str:
    return f"{_title(rule)} fired: {_where(rule, windows)}."


def _closed_message(rule: AlertRule, windows: list[WindowValue]) -> str:
    if not windows:
        return f"{_title(rule)} no longer fires: no window has a value any more."
    return f"{_title(rule)} no longer fires: {_where(rule, windows)}."


def _notify_change(client: Client, change: _Change) -> Alert:
    """Log the change, POST it to the rule's webhook if it has one, record the outcome."""
    alert, rule = change.alert, change.rule
    if alert.status == "open":
        log.warning("alert %d opened: %s", alert.id, change.message)
    else:
        log.info("alert %d closed: %s", alert.id, change.message)
    if rule.webhook_url is None:
        return alert
    payload = {
        "alert_id": alert.id,
        "rule": rule.name,
        "rule_text": rule.text,
        "monitor": rule.monitor,
        "deployment": rule.deployment,
        "status": alert.status,
        "value": change.windows[-1].value if change.windows else None,
        "window_start": change.windows[0].start if change.windows else None,
        "window_end": change.windows[-1].end if change.windows else None,
        "message": change.message,
    }
    try:
        error = _notify.send(rule.webhook_url, client.settings.webhook_allow, payload)
    except Exception as exc:  # a notifier's bug must not stop the monitor run; record it
        log.exception("alert %d: the webhook notifier failed", alert.id)
        error = f"The webhook notifier failed: {type(exc).__name__}: {exc}"
    if error is not None:
        log.warning("alert %d: webhook not delivered: %s", alert.id, error)
    with client.store.write(client.actor) as tx:
        return alerts_repo.record_notification(tx, alert.id, error)
