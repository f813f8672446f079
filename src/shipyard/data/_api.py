"""The dataset functions users call; each takes an optional ``client``.

Without one, the active run's client is used (so lineage lands in the run's
store), else a Client built from the settings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from shipyard.data import _register
from shipyard.data._contract import Contract, ValidationReport
from shipyard.data._diff import DatasetDiff
from shipyard.errors import InvalidInput
from shipyard.governance.lineage import Lineage
from shipyard.store.entities import Dataset, DatasetVersion
from shipyard.tracking import Client, active_run

_REF = re.compile(r"(?:dataset:)?(?P<name>[^@\s]+)(?:@(?P<version>\d+))?")


def _client_and_run(client: Client | None) -> tuple[Client, str | None]:
    run = active_run()
    if client is None:
        client = run.client if run is not None else Client()
    same = run is not None and run.client._store_key() == client._store_key()
    run_id = run.run_id if run is not None and same else None
    return client, run_id


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'credit', 'credit@3' or 'dataset:credit@3' -> (name, version or None)."""
    match = _REF.fullmatch(ref.strip()) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInput(
            f"Bad dataset reference {ref!r}.", hint="Write NAME or NAME@VERSION, e.g. credit@3."
        )
    version = match.group("version")
    return _register.check_name(match.group("name")), None if version is None else int(version)


def register_dataset(
    name: str,
    data: Any,
    description: str | None = None,
    contract: Contract | str | None = None,
    *,
    strict: bool | None = None,
    client: Client | None = None,
    progress: _register.Progress | None = None,
) -> DatasetVersion:
    """Store ``data`` as a new version of dataset ``name`` (or return the equal one stored).

    ``data``: a pandas DataFrame, a pyarrow Table or RecordBatchReader, or a
    path to a CSV or Parquet file or to a folder of them. ``contract``: a
    :class:`Contract` or its YAML; without one the dataset's current contract
    applies, and a first version gets an inferred one. ``strict`` overrides
    the contract's mode for this registration: a failed check in strict mode
    raises :class:`ContractViolation` and stores nothing; in warn mode the
    version is stored with its report.
    """
    client, run_id = _client_and_run(client)
    return client._register_dataset(
        name,
        data,
        description=description,
        contract=contract,
        strict=strict,
        run_id=run_id,
        progress=progress,
    )


def get_dataset(
    ref: str, version: int | None = None, *, client: Client | None = None
) -> DatasetVersion:
    """A version's record (schema, profile, validation); the newest without a version."""
    name, ref_version = parse_ref(ref)
    client, _ = _client_and_run(client)
    return client.get_dataset_version(name, version if version is not None else ref_version)


def load_dataset(
    ref: str,
    version: int | None = None,
    *,
    format: Literal["pandas", "arrow"] = "pandas",
    client: Client | None = None,
) -> Any:
    """The rows of a version as a pandas DataFrame (default) or a pyarrow Table.

    The blob is verified against its digest before it is read. Inside a run,
    the version is recorded as an input of the run.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if format not in ("pandas", "arrow"):
        raise InvalidInput(f"format must be 'pandas' or 'arrow'; got {format!r}.")
    found = get_dataset(ref, version, client=client)
    client, run_id = _client_and_run(client)
    table = pq.read_table(pa.BufferReader(client._dataset_bytes(found)))
    if run_id is not None:
        client.record_input(run_id, found.name, found.version)
    return table.to_pandas() if format == "pandas" else table


def list_datasets(*, client: Client | None = None) -> list[Dataset]:
    client, _ = _client_and_run(client)
    return client.list_datasets()


def dataset_versions(name: str, *, client: Client | None = None) -> list[DatasetVersion]:
    client, _ = _client_and_run(client)
    return client.dataset_versions(_register.check_name(name))


def dataset_contract(name: str, *, client: Client | None = None) -> str:
    """The dataset's current contract as YAML."""
    client, _ = _client_and_run(client)
    return client.dataset_contract(_register.check_name(name))


def set_dataset_contract(
    name: str, contract: Contract | str, *, client: Client | None = None
) -> int:
    """Store a new version of the dataset's contract (checked first); return its number."""
    parsed = (
        contract
        if isinstance(contract, Contract)
        else Contract.from_yaml(contract, source="the new contract")
    )
    client, _ = _client_and_run(client)
    return client.set_dataset_contract(_register.check_name(name), parsed.to_yaml())


def validate_dataset(
    name: str, data: Any, contract: Contract | str | None = None, *, client: Client | None = None
) -> ValidationReport:
    """Check ``data`` against the dataset's contract without storing anything."""
    client, _ = _client_and_run(client)
    return _register.validate(client, name, data, contract)


def lineage(ref: str, *, depth: int = 25, client: Client | None = None) -> Lineage:
    """Upstream and downstream of ``dataset:NAME@VERSION`` or ``run:RUN_ID``, as a graph."""
    client, _ = _client_and_run(client)
    return client.lineage(ref, depth=depth)


def diff_datasets(name: str, old: int, new: int, *, client: Client | None = None) -> DatasetDiff:
    """Schema, row-count and per-column distribution changes between two versions.

    Against a server it is computed there, next to the data: the answer is a few
    numbers per column, while the two versions may be gigabytes each.
    """
    for label, number in (("old", old), ("new", new)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise InvalidInput(
                f"{label} must be a dataset version number (1 or more); got {number!r}.",
                hint=f"List the versions with `shipyard data show {name}`.",
            )
    client, _ = _client_and_run(client)
    return client._diff_datasets(_register.check_name(name), old, new)


def export_dataset(
    ref: str,
    path: str | Any,
    *,
    format: Literal["parquet", "csv"] | None = None,
    client: Client | None = None,
) -> Path:
    """Write a version to ``path`` as Parquet or CSV: verified first, written atomically."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from shipyard._files import atomic_open

    target = Path(path)
    chosen = format or (
        "csv"
        if target.name.lower().endswith(".csv")
        else "parquet"
        if target.name.lower().endswith((".parquet", ".pq"))
        else None
    )
    if chosen not in ("parquet", "csv"):
        raise InvalidInput(
            f"Cannot tell the format of {str(target)!r}.",
            hint="End the path in .parquet or .csv, or pass format=.",
        )
    name, version = parse_ref(ref)
    if version is None:
        raise InvalidInput(f"Export needs a version: {name}@VERSION.")
    found = get_dataset(name, version, client=client)
    client, _ = _client_and_run(client)
    blob = client._dataset_bytes(found)
    with atomic_open(target) as out:
        if chosen == "parquet":
            out.write(blob)
        else:
            parquet = pq.ParquetFile(pa.BufferReader(blob))
            with pacsv.CSVWriter(out, parquet.schema_arrow) as writer:
                for batch in parquet.iter_batches():
                    writer.write_batch(batch)
    return target
