"""Shipyard: the whole MLOps loop in one install.

import shipyard as sy

with sy.start_run(experiment="credit"):
    sy.log_params({"model": "lr", "C": 0.1})
    sy.log_metric("auc", 0.91)
"""

from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.store.entities import (
    Artifact,
    AuditEvent,
    Experiment,
    Metric,
    Run,
    RunPage,
    RunStatus,
)
from shipyard.tracking import (
    ActiveRun,
    Client,
    active_run,
    end_run,
    flush,
    log_artifact,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    set_tags,
    start_run,
)

__all__ = [
    "ActiveRun",
    "Artifact",
    "AuditEvent",
    "Client",
    "Experiment",
    "Metric",
    "Run",
    "RunPage",
    "RunStatus",
    "Settings",
    "__version__",
    "active_run",
    "end_run",
    "flush",
    "log_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
]
