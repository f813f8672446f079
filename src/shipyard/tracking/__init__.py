"""Experiment tracking: experiments, runs, params, metrics, tags, artifacts."""

from shipyard.tracking._client import Client
from shipyard.tracking._fluent import (
    ActiveRun,
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
    "Client",
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
