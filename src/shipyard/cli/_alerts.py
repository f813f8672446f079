"""``shipyard alerts``: alert rules on monitors, and the alerts they opened."""

from __future__ import annotations

import urllib.parse

import click

from shipyard.cli._app import State, pass_state


@click.group()
def alerts() -> None:
    """Alerts opened by rules on monitors, and the rules themselves."""


@alerts.command("list")
@click.option("--monitor", metavar="MONITOR", help="Only this monitor's alerts.")
@click.option(
    "--status",
    type=click.Choice(["open", "closed", "all"]),
    default="all",
    show_default=True,
    help="Which alerts to show.",
)
@pass_state
def list_(state: State, monitor: str | None, status: str) -> None:
    """List alerts, newest first."""
    found = state.client.list_alerts(monitor=monitor, status=status)
    if not found:
        click.echo("No alerts." if status == "all" else f"No {status} alerts.")
        return
    from shipyard.cli import _render

    _render.console().print(
        _render.table(
            None,
            ["id", "status", "monitor", "rule", "opened", "window", "value", "closed", "message"],
            (
                (
                    a.id,
                    a.status,
                    a.monitor,
                    a.rule,
                    _render.when(a.opened_at),
                    a.opened_window
                    if a.closed_window is None
                    else f"{a.opened_window}-{a.closed_window}",
                    "" if a.value is None else f"{a.value:.4g}",
                    _render.when(a.closed_at),
                    a.message
                    + ("" if a.notify_error is None else f" [webhook failed: {a.notify_error}]"),
                )
                for a in found
            ),
            no_wrap=["id", "status", "opened", "closed"],
        )
    )


@alerts.group()
def rules() -> None:
    """Rules that open alerts: "drift_share > 0.3 for 2 windows", "roc_auc < 0.8", ..."""


@rules.command()
@click.argument("monitor")
@click.argument("rule")
@click.option("--name", metavar="NAME", help="The rule's name (default: its text).")
@click.option(
    "--webhook",
    metavar="URL",
    help="POST each opening and closing here as JSON; the host must be on the "
    "webhook_allow setting's list (SHIPYARD_WEBHOOK_ALLOW).",
)
@pass_state
def create(state: State, monitor: str, rule: str, name: str | None, webhook: str | None) -> None:
    """Add RULE to MONITOR, e.g. "drift_share > 0.3 for 2 windows" or "roc_auc < 0.8".

    A metric is drift_share, drift:COLUMN (1 when that column drifted) or a
    live metric (roc_auc, accuracy, f1, precision, recall, log_loss, mae,
    rmse, r2). The rule fires when the last N windows with a value all meet
    the condition; windows without labels have no live metrics.
    """
    made = state.client.create_alert_rule(monitor, rule, name=name, webhook=webhook)
    click.echo(f"created alert rule {made.id} on monitor {made.monitor}: {made.text}")


@rules.command("list")
@click.option("--monitor", metavar="MONITOR", help="Only this monitor's rules.")
@pass_state
def list_rules(state: State, monitor: str | None) -> None:
    """List alert rules."""
    found = state.client.list_alert_rules(monitor)
    if not found:
        click.echo("No alert rules.")
        return
    from shipyard.cli import _render

    _render.console().print(
        _render.table(
            None,
            ["id", "monitor", "name", "rule", "webhook", "created", "by"],
            (
                (
                    r.id,
                    r.monitor,
                    r.name,
                    r.text,
                    _webhook_host(r.webhook_url),
                    _render.when(r.created_at),
                    r.created_by,
                )
                for r in found
            ),
            no_wrap=["id", "created"],
        )
    )


def _webhook_host(url: str | None) -> str:
    """Where a webhook goes, without its path and query (which often hold its secret)."""
    if url is None:
        return ""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


@rules.command()
@click.argument("rule_id", type=int, metavar="RULE_ID")
@pass_state
def delete(state: State, rule_id: int) -> None:
    """Delete the rule RULE_ID (see `shipyard alerts rules list`) and its alerts."""
    gone = state.client.delete_alert_rule(rule_id)
    click.echo(f"deleted alert rule {gone.id} on monitor {gone.monitor}: {gone.text}")
