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
    lineage REF                upstream and downstream of a dataset version or run
    server                     serve the store over HTTP (REST API, auth, roles)
    users create|list|set-role|disable
    tokens create|list|revoke  API tokens, shown once and stored hashed

Library errors (:class:`shipyard.errors.ShipyardError`) become one line on
stderr and exit status 1; usage errors exit with 2. Heavy modules (rich, the
tracking client) are imported inside the commands.
"""

from shipyard.cli._app import cli, main
from shipyard.cli._audit import audit
from shipyard.cli._data import data, lineage
from shipyard.cli._db import db
from shipyard.cli._models import models
from shipyard.cli._server import server, tokens, users
from shipyard.cli._tracking import experiments, runs

__all__ = ["cli", "main"]

for _command in (audit, data, db, experiments, lineage, models, runs, server, tokens, users):
    cli.add_command(_command)
del _command
