"""``shipyard serve [MODEL_URI] [--deployment NAME]``: the prediction server of one deployment
(see ``shipyard.serving``): of a model URI, or of a deployment kept in the store."""

from __future__ import annotations

import json
import os
import sys

import click

from shipyard.cli._app import State, pass_state
from shipyard.cli._server import check_exposure, listen_options
from shipyard.errors import ConfigError, InvalidInput


@click.command()
@click.argument("uri", metavar="[MODEL_URI]", required=False)
@click.option(
    "--deployment",
    metavar="NAME",
    help="Name of the deployment, which names its prediction log (default: the model's name). "
    "Without MODEL_URI: the stored deployment to serve (model, canary, shadow), whose updates "
    "are picked up within seconds.",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "native", "onnx"]),
    default="auto",
    show_default=True,
    help="auto: the version's ONNX export when it has one (checked against the original "
    "when exported), else the native model.",
)
@listen_options(
    port=8080,
    workers_help="Worker processes; each loads the model and writes its own log segments.",
    insecure_risk="predict and post labels",
)
@pass_state
def serve(
    state: State,
    uri: str | None,
    deployment: str | None,
    host: str,
    port: int,
    workers: int,
    runtime: str,
    auth: bool,
    insecure: bool,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve MODEL_URI (models:/NAME@ALIAS or models:/NAME/N), or the stored deployment
    --deployment NAME: POST /predict and /labels, GET /health, /ready and /metrics. Every
    prediction is logged durably before it is answered; an alias move or an update of the
    deployment is picked up within seconds, without a restart."""
    try:
        import uvicorn

        from shipyard.server import _security
        from shipyard.serving import _app
    except ImportError as exc:
        raise ConfigError(
            f"`shipyard serve` needs packages that are not installed ({exc.name}).",
            hint="Install them with: pip install 'shipyard[server,models]'.",
        ) from exc
    from shipyard import __version__
    from shipyard.models import _uri
    from shipyard.serving import _log

    ref = None if uri is None else _uri.parse(uri)
    if ref is not None:
        name = deployment or ref.name
    elif deployment is not None:
        name = deployment
    else:
        raise InvalidInput(
            "Nothing to serve: give MODEL_URI or --deployment NAME.",
            hint="e.g. `shipyard serve models:/credit@champion`, or `shipyard serve --deployment "
            "credit` for a deployment made with `shipyard deployments create`.",
        )
    exposed = check_exposure(
        host, auth=auth, insecure=insecure, risk="call the model and post labels"
    )
    hosts = list(allowed_hosts) or list(_security.default_allowed_hosts(host))
    _security.check_allowed_hosts(hosts)

    client = state.client
    settings = client.settings
    folder = _log.log_folder(settings.home, name)  # checks the name
    # Fail here, not in every worker: the URI or the stored deployment must resolve now.
    if ref is not None:
        serving = f"{ref} (now {client.get_model_version(str(ref)).uri})"
    else:
        stored = client.get_deployment(name)
        serving = f"{stored.model_uri} (now {client.get_model_version(stored.model_uri).uri})"
        if stored.canary_uri is not None:
            serving += f", canary {stored.canary_uri} at {stored.canary_percent:g}%"
        if stored.shadow_uri is not None:
            serving += f", shadow {stored.shadow_uri}"
    if exposed and not auth:
        click.echo(
            f"WARNING: serving on {host}:{port} WITHOUT AUTHENTICATION (--insecure).",
            file=sys.stderr,
        )
    os.environ[_app.OPTIONS_VARIABLE] = json.dumps(
        {
            "uri": None if ref is None else str(ref),
            "deployment": name,
            "runtime": runtime,
            "auth": auth,
            "allowed_hosts": hosts,
        }
    )
    os.environ["SHIPYARD_URI"] = settings.uri
    os.environ["SHIPYARD_HOME"] = str(settings.home)
    os.environ["SHIPYARD_ARTIFACTS"] = settings.artifacts
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(
        f"Shipyard {__version__} serving {serving} as deployment {name} on "
        f"http://{shown_host}:{port} (runtime {runtime}, auth {'on' if auth else 'off'}, "
        f"{workers} worker{'s' if workers != 1 else ''}; prediction log in {folder})",
        file=sys.stderr,
    )
    uvicorn.run(
        f"{_app.__name__}:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
