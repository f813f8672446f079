"""Alert rules on monitors, and the alerts they open (see shipyard.monitoring._alerts)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput
from shipyard.tracking import _validate

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.store import Store
    from shipyard.store.alerts import Alert, AlertRule

ALERT_STATUS_CHOICES = ("open", "closed", "all")


class AlertsMixin:
    """Alert rules on monitors, and the alerts they open (see shipyard.monitoring._alerts)."""

    if TYPE_CHECKING:
        store: Store
        settings: Settings
        actor: str

    def create_alert_rule(
        self,
        monitor: str,
        rule: str | tuple[str, str, float] | tuple[str, str, float, int],
        *,
        name: str | None = None,
        webhook: str | None = None,
    ) -> AlertRule:
        """Add a rule to ``monitor``: ``"drift_share > 0.3 for 2 windows"``, ``"roc_auc < 0.8"``,
        or ``(metric, op, threshold[, for_windows])``.

        ``name`` defaults to the rule's text. ``webhook``: an http(s) URL whose
        host is on the ``webhook_allow`` setting's list; each opening and
        closing is POSTed to it as JSON.
        """
        from shipyard.monitoring import _alerts, _notify
        from shipyard.store import alerts as alerts_repo

        _validate.name("monitor", monitor)
        spec = _alerts.rule_spec(rule)
        name = spec.text if name is None else _validate.name("alert rule", name)
        if webhook is not None:
            _notify.check_url(webhook, _notify.AllowList(self.settings.webhook_allow))
        with self.store.write(self.actor) as tx:
            return alerts_repo.create_rule(
                tx,
                monitor,
                name=name,
                metric=spec.metric,
                op=spec.op,
                threshold=spec.threshold,
                for_windows=spec.for_windows,
                webhook_url=webhook,
            )

    def list_alert_rules(self, monitor: str | None = None) -> list[AlertRule]:
        """Every rule, or ``monitor``'s, oldest first."""
        from shipyard.store import alerts as alerts_repo

        if monitor is not None:
            _validate.name("monitor", monitor)
        with self.store.read() as conn:
            return alerts_repo.list_rules(conn, monitor)

    def delete_alert_rule(self, rule_id: int) -> AlertRule:
        """Delete a rule (by the id ``list_alert_rules`` shows) and its alerts."""
        from shipyard.store import alerts as alerts_repo

        with self.store.write(self.actor) as tx:
            return alerts_repo.delete_rule(tx, alert_rule_id(rule_id))

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        """Alerts, newest first; ``status`` "open", "closed" or "all" (None: all)."""
        from shipyard.store import alerts as alerts_repo

        if monitor is not None:
            _validate.name("monitor", monitor)
        with self.store.read() as conn:
            return alerts_repo.list_alerts(conn, monitor, alert_status(status))


def alert_rule_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**53:
        raise InvalidInput(
            f"An alert rule id must be a positive whole number; got {value!r}.",
            hint="List rules and their ids with `shipyard alerts rules list`.",
        )
    return value


def alert_status(value: Any) -> str | None:
    """``status`` as the store takes it: "open", "closed", or None for every alert."""
    if value is not None and value not in ALERT_STATUS_CHOICES:
        raise InvalidInput(
            f"An alert status must be one of {', '.join(ALERT_STATUS_CHOICES)}; got {value!r}."
        )
    return None if value in (None, "all") else value
