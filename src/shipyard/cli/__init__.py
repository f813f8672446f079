"""The ``shipyard`` command line: parse, call the library, render.

    shipyard [--uri URI] [--home DIR] [--debug] COMMAND

    db upgrade                 migrate the configured metadata store
    audit verify               recompute the audit chain, name the first bad event
    audit list                 list audit events
    experiments list           list experiments
    runs list                  search runs (filter, order, page)
    runs show RUN_ID           params, latest metrics, tags and artifacts of a run
    data add NAME PATH         register a CSV/Parquet file or folder as a dataset version
    data list|show|diff|validate|export|contract
    lineage REF                upstream and downstream of a dataset version, model version or run
    models list|show|alias|unalias|archive|export|card
    drift REF CURRENT          test each column for drift from REF (exit 3 with --fail-on-drift)
    server                     serve the store over HTTP (REST API, auth, roles)
    serve [MODEL_URI] [--deployment NAME]   serve a model or a stored deployment:
                               /predict, /labels, /health, /ready, /metrics
    deployments create|list|show|update|delete   deployments kept in the store (model, canary, shadow)
    monitors create|list|show|run|delete   windows of a deployment's log: drift, live performance
    alerts list|rules create|rules list|rules delete   alert rules on monitors and the alerts they open
    users create|list|set-role|disable
    tokens create|list|revoke  API tokens, shown once and stored hashed

Library errors (:class:`shipyard.errors.ShipyardError`) become one line on
stderr and exit status 1; usage errors exit with 2. Heavy modules (rich, the
tracking client) are imported inside the commands.
"""

from shipyard.cli._alerts import alerts
from shipyard.cli._app import cli, main
from shipyard.cli._audit import audit
from shipyard.cli._data import data, lineage
from shipyard.cli._db import db
from shipyard.cli._deployments import deployments
from shipyard.cli._models import models
from shipyard.cli._monitoring import drift
from shipyard.cli._monitors import monitors
from shipyard.cli._server import server, tokens, users
from shipyard.cli._serving import serve
from shipyard.cli._tracking import experiments, runs

__all__ = ["cli", "main"]

for _command in (
    alerts,
    audit,
    data,
    db,
    deployments,
    drift,
    experiments,
    lineage,
    models,
    monitors,
    runs,
    serve,
    server,
    tokens,
    users,
):
    cli.add_command(_command)
del _command
