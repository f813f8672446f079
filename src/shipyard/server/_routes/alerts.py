"""Alert rules on monitors, and the alerts they open.

Reads need a viewer, creating and deleting rules an editor. A rule with a
webhook needs an admin: a webhook sends alert data out of the network to a
URL its author chose (the ``webhook_allow`` setting bounds where, an admin
decides whether).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import Field, StrictFloat, StrictInt, StrictStr

from shipyard.errors import InvalidInput, PermissionDenied
from shipyard.monitoring._alerts import MAX_FOR_WINDOWS, PERFORMANCE_METRICS
from shipyard.monitoring._notify import MAX_URL_LENGTH
from shipyard.server import _schemas as s
from shipyard.server._auth import Principal, Role
from shipyard.server._routes._common import ERROR_RESPONSES, Editor, MaxResults, PageToken, Viewer
from shipyard.server._routes._common import page as one_page
from shipyard.store._schema import NAME_LENGTH

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=ERROR_RESPONSES)

MonitorName = Annotated[
    str | None, Query(max_length=NAME_LENGTH, description="Only this monitor's.")
]
RuleId = Annotated[int, Path(ge=1, le=s.MAX_INT, description="The rule's id.", examples=[1])]
_METRICS = ", ".join(("drift_share", "drift:<column>", *PERFORMANCE_METRICS))


#: 2.0 counts as 2, as JSON Schema has it; 2.5 and "2" do not.
ForWindows = s.bounded_int(1, MAX_FOR_WINDOWS)


class AlertRule(s.Response):
    id: int
    monitor: str
    deployment: str
    name: str
    #: drift_share, drift:<column> or a live performance metric (roc_auc, accuracy, ...).
    metric: str
    op: Literal["<", "<=", ">", ">="]
    threshold: float
    #: How many of the latest windows with a value must all satisfy the condition.
    for_windows: int
    #: The rule as text, e.g. "drift_share > 0.3 for 2 windows".
    text: str
    webhook_url: str | None
    created_at: int
    created_by: str


class AlertRuleCreate(s.Request):
    """A rule as text (``rule``) or in parts (``metric``, ``op``, ``threshold``, ``for_windows``)."""

    monitor: Annotated[StrictStr, Field(min_length=1, max_length=NAME_LENGTH)]
    rule: Annotated[
        StrictStr | None,
        Field(max_length=1000, examples=["drift_share > 0.3 for 2 windows"]),
    ] = None
    metric: Annotated[StrictStr | None, Field(max_length=NAME_LENGTH, description=_METRICS)] = None
    op: Literal["<", "<=", ">", ">="] | None = None
    threshold: StrictFloat | StrictInt | None = None
    for_windows: ForWindows | None = None
    name: Annotated[StrictStr | None, Field(min_length=1, max_length=NAME_LENGTH)] = None
    #: An http(s) URL on the server's webhook_allow list; creating one needs an admin.
    webhook: Annotated[StrictStr | None, Field(min_length=1, max_length=MAX_URL_LENGTH)] = None


class Alert(s.Response):
    id: int
    rule_id: int
    rule: str
    monitor: str
    deployment: str
    status: Literal["open", "closed"]
    opened_at: int
    #: The number of the latest window that made the rule fire.
    opened_window: int
    closed_at: int | None
    closed_window: int | None
    #: The metric's value in ``opened_window``.
    value: float | None
    message: str
    #: When the webhook was last called, and why it failed (null: it did not).
    notified_at: int | None
    notify_error: str | None


@router.get("", response_model=s.Page[Alert])
def list_alerts(
    request: Request,
    principal: Viewer,
    monitor: MonitorName = None,
    status: Annotated[
        Literal["open", "closed", "all"], Query(description="Which alerts (default: all).")
    ] = "all",
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Alerts, newest first."""
    found = principal.client(request).list_alerts(monitor=monitor, status=status)
    return one_page(found, max_results, page_token)


@router.get("/rules", response_model=s.Page[AlertRule])
def list_rules(
    request: Request,
    principal: Viewer,
    monitor: MonitorName = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Alert rules, oldest first; below admin, a webhook URL shows only its scheme and host."""
    found = principal.client(request).list_alert_rules(monitor)
    return one_page([_shown(rule, principal) for rule in found], max_results, page_token)


@router.post("/rules", response_model=AlertRule, status_code=status.HTTP_201_CREATED)
def create_rule(body: AlertRuleCreate, request: Request, principal: Editor) -> object:
    """Add a rule to a monitor; with a webhook, only an admin may."""
    if body.webhook is not None and principal.role < Role.admin:
        raise PermissionDenied(
            f"Only an admin may give an alert rule a webhook ({principal.name!r} is "
            f"{principal.role.name}): it sends alert data to a URL outside Shipyard.",
            hint="Create the rule without --webhook, or ask an admin to create it.",
        )
    parts = (body.metric, body.op, body.threshold, body.for_windows)
    if (body.rule is not None and parts != (None,) * 4) or (
        body.rule is None and None in parts[:3]
    ):
        raise InvalidInput(
            "Give the rule either as text (rule) or in parts (metric, op, threshold and "
            "optionally for_windows), not both and not neither.",
            hint='E.g. {"monitor": "credit", "rule": "drift_share > 0.3 for 2 windows"}.',
        )
    rule = body.rule if body.rule is not None else (*parts[:3], body.for_windows or 1)
    return principal.client(request).create_alert_rule(
        body.monitor,
        rule,  # type: ignore[arg-type]  # checked by create_alert_rule
        name=body.name,
        webhook=body.webhook,
    )


@router.delete("/rules/{rule_id}", response_model=AlertRule)
def delete_rule(rule_id: RuleId, request: Request, principal: Editor) -> object:
    """Delete a rule and its alerts; answers the rule as it was."""
    return _shown(principal.client(request).delete_alert_rule(rule_id), principal)


def _shown(rule: Any, principal: Principal) -> Any:
    """The rule as ``principal`` may see it: a webhook URL's path and query often hold
    its secret, so only an admin (who alone may set one) reads them."""
    if rule.webhook_url is None or principal.role >= Role.admin:
        return rule
    parts = urllib.parse.urlsplit(rule.webhook_url)
    return dataclasses.replace(rule, webhook_url=f"{parts.scheme}://{parts.netloc}/…")
