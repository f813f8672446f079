"""Datasets: immutable, content-addressed, profiled snapshots checked against contracts.

    import shipyard as sy

    v1 = sy.register_dataset("credit", "credit.csv")      # DatasetVersion: credit@1
    df = sy.load_dataset("credit")                         # newest version, as pandas
    sy.diff_datasets("credit", 1, 2)                       # schema, rows, drift per column

Inside ``sy.start_run()``, a registration records the run as its creator and
a load records the version as an input of the run (see ``sy.lineage``).
"""

from shipyard.data._api import (
    dataset_contract,
    dataset_versions,
    diff_datasets,
    export_dataset,
    get_dataset,
    lineage,
    list_datasets,
    load_dataset,
    register_dataset,
    set_dataset_contract,
    validate_dataset,
)
from shipyard.data._contract import Contract, ValidationReport
from shipyard.data._diff import DatasetDiff
from shipyard.data._register import ContractViolation

__all__ = [
    "Contract",
    "ContractViolation",
    "DatasetDiff",
    "ValidationReport",
    "dataset_contract",
    "dataset_versions",
    "diff_datasets",
    "export_dataset",
    "get_dataset",
    "lineage",
    "list_datasets",
    "load_dataset",
    "register_dataset",
    "set_dataset_contract",
    "validate_dataset",
]
