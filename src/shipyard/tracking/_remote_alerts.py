"""Alert rules and alerts over a Shipyard server's REST API (routes under ``/alerts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shipyard.store.alerts import Alert, AlertRule
from shipyard.tracking import _validate
from shipyard.tracking._alerts import alert_rule_id, alert_status

if TYPE_CHECKING:
    from collections.abc import Sequence


class RemoteAlertsMixin:
    """Alert rules and alerts over a Shipyard server's REST API (routes under ``/alerts``)."""

    if TYPE_CHECKING:

        def _call(self, method: str, path: str, **kwargs: Any) -> Any: ...
        def _items(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]: ...

    def create_alert_rule(
        self,
        monitor: str,
        rule: str | tuple[str, str, float] | tuple[str, str, float, int],
        *,
        name: str | None = None,
        webhook: str | None = None,
    ) -> AlertRule:
        """See :meth:`Client.create_alert_rule`; the server checks the webhook against its own
        ``webhook_allow`` setting, and a rule with a webhook needs an admin's token."""
        from shipyard.monitoring import _alerts

        _validate.name("monitor", monitor)
        spec = _alerts.rule_spec(rule)
        body = {
            "monitor": monitor,
            "metric": spec.metric,
            "op": spec.op,
            "threshold": spec.threshold,
            "for_windows": spec.for_windows,
            "name": spec.text if name is None else _validate.name("alert rule", name),
            "webhook": webhook,
        }
        return _rule(self._call("POST", "/alerts/rules", json=body))

    def list_alert_rules(self, monitor: str | None = None) -> list[AlertRule]:
        params = {} if monitor is None else {"monitor": _validate.name("monitor", monitor)}
        return [_rule(r) for r in self._items("/alerts/rules", params)]

    def delete_alert_rule(self, rule_id: int) -> AlertRule:
        return _rule(self._call("DELETE", f"/alerts/rules/{alert_rule_id(rule_id)}"))

    def list_alerts(self, monitor: str | None = None, status: str | None = None) -> list[Alert]:
        params = {"status": alert_status(status) or "all"}
        if monitor is not None:
            params["monitor"] = _validate.name("monitor", monitor)
        return [_alert(a) for a in self._items("/alerts", params)]


def _fields(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    names: Sequence[str] = list(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    return {name: d[name] for name in names}


def _rule(d: Mapping[str, Any]) -> AlertRule:
    return AlertRule(**_fields(AlertRule, d))


def _alert(d: Mapping[str, Any]) -> Alert:
    return Alert(**_fields(Alert, d))
