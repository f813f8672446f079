"""``shipyard audit``: check and read the audit trail."""

from __future__ import annotations

import sys

import click

from shipyard.cli._app import EXIT_ERROR, State, pass_state


@click.group()
def audit() -> None:
    """Check and read the hash-chained audit trail."""


@audit.command()
@pass_state
def verify(state: State) -> None:
    """Recompute the audit chain; exit 1 naming the first bad event."""
    report = state.client.verify_audit()
    if report.ok:
        click.echo(f"audit chain OK: {report.checked} events")
        return
    click.echo(
        f"audit chain BROKEN at event {report.first_bad_seq}: {_after_prefix(report.reason)} "
        f"({report.checked} events before it check out)",
        file=sys.stderr,
    )
    sys.exit(EXIT_ERROR)


def _after_prefix(reason: str | None) -> str:
    """The reason without its leading "event N: ", which the line already says."""
    reason = reason or "unknown reason"
    head, sep, rest = reason.partition(": ")
    return rest if sep and head.startswith("event ") else reason


def _parse_object(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, str | None] | None:
    if value is None:
        return None
    object_type, sep, object_id = value.partition(":")
    if not object_type or (sep and not object_id):
        raise click.BadParameter(
            f"expected TYPE or TYPE:ID such as experiment:1 or run:<run id>; got {value!r}."
        )
    return object_type, object_id or None


@audit.command("list")
@click.option(
    "--object",
    "object_",
    metavar="TYPE[:ID]",
    callback=_parse_object,
    help="Only events about this object, e.g. experiment:1 or run:<run id>.",
)
@click.option(
    "--limit", type=int, metavar="N", help="Show only the newest N events (listed oldest first)."
)
@pass_state
def list_(state: State, object_: tuple[str, str | None] | None, limit: int | None) -> None:
    """List audit events in chain order."""
    object_type, object_id = object_ if object_ else (None, None)
    found = state.client.audit_events(
        object_type=object_type, object_id=object_id, limit=limit, newest=True
    )
    if not found:
        click.echo("No audit events.")
        return
    from shipyard.cli import _render

    _render.console().print(
        _render.table(
            None,
            ["seq", "time", "actor", "action", "object", "payload", "hash"],
            (
                (
                    e.seq,
                    _render.when(e.time),
                    e.actor,
                    e.action,
                    f"{e.object_type}:{e.object_id}",
                    e.payload,
                    e.hash[:12],
                )
                for e in found
            ),
            no_wrap=["seq", "time", "hash"],
        )
    )
