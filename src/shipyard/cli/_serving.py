"""``shipyard serve URI``: the prediction server of one deployment (see ``shipyard.serving``)."""

from __future__ import annotations

import json
import os
import sys

import click

from shipyard.cli._app import State, pass_state
from shipyard.cli._server import check_exposure, listen_options
from shipyard.errors import ConfigError


@click.command()
@click.argument("uri", metavar="MODEL_URI")
@click.option(
    "--deployment",
    metavar="NAME",
    help="Name of the deployment, which names its prediction log (default: the model's name).",
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
    uri: str,
    deployment: str | None,
    host: str,
    port: int,
    workers: int,
    runtime: str,
    auth: bool,
    insecure: bool,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve MODEL_URI (models:/NAME@ALIAS or models:/NAME/N): POST /predict and /labels,
    GET /health, /ready and /metrics. Every prediction is logged durably before it is
    answered; an alias move is picked up within seconds, without a restart."""
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

    ref = _uri.parse(uri)
    name = deployment or ref.name
    exposed = check_exposure(
        host, auth=auth, insecure=insecure, risk="call the model and post labels"
    )
    hosts = list(allowed_hosts) or list(_security.default_allowed_hosts(host))
    _security.check_allowed_hosts(hosts)

    client = state.client
    settings = client.settings
    version = client.get_model_version(uri)  # fail here, not in every worker
    folder = _log.log_folder(settings.home, name)
    if exposed and not auth:
        click.echo(
            f"WARNING: serving on {host}:{port} WITHOUT AUTHENTICATION (--insecure).",
            file=sys.stderr,
        )
    os.environ[_app.OPTIONS_VARIABLE] = json.dumps(
        {
            "uri": str(ref),
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
        f"Shipyard {__version__} serving {ref} (now {version.uri}) as deployment {name} on "
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
