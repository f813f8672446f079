"""Register and load dataset versions.

One pass over the source's record batches profiles them, checks them against
the dataset's contract, and writes them as Parquet into the blob store, hashing
the bytes as they are written. Rows are regrouped into fixed-size row groups
with fixed writer options, so equal rows with an equal schema give equal bytes
and hence one version, whatever their source. (The Parquet writer records its
own version in the file: a pyarrow upgrade can give unchanged rows a new
version once.) An unchanged source file or folder (same size, times and inode)
is recognised from its fingerprint without being read again.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shipyard.data._contract import Contract, ContractChecker, ValidationReport, infer_contract
from shipyard.data._ingest import Source, fingerprint, open_source
from shipyard.data._profile import Profiler
from shipyard.errors import InvalidInput, NotFound
from shipyard.store import datasets as datasets_repo
from shipyard.store.entities import DatasetVersion

if TYPE_CHECKING:
    from shipyard.tracking import Client

ROW_GROUP_ROWS = 131_072
_PARQUET_OPTIONS: dict[str, Any] = {"compression": "snappy", "write_statistics": True}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Progress = Callable[[int], None]


class ContractViolation(InvalidInput):
    """A strict contract refused a registration; ``report`` says which expectations failed."""

    code = "contract_violation"

    def __init__(self, name: str, report: ValidationReport) -> None:
        self.report = report
        failed = "; ".join(f"{f.column or 'dataset'}: {f.message}" for f in report.failures[:5])
        more = len(report.failures) - 5
        super().__init__(
            f"Dataset {name!r} breaks its strict contract ({len(report.failures)} failed "
            f"expectation(s)): {failed}{f'; and {more} more' if more > 0 else ''}.",
            hint="Fix the data, edit the contract (`shipyard data contract NAME`), or register in warn mode.",
        )


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"A dataset name is 1 to 128 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; got {name!r}.",
            hint="Use names such as 'credit' or 'credit-2024.q1'.",
        )
    return name


def _contract_from(value: Contract | str | None) -> Contract | None:
    if value is None or isinstance(value, Contract):
        return value
    if isinstance(value, str):
        return Contract.from_yaml(value)
    raise InvalidInput(f"A contract is a Contract or its YAML text; got {type(value).__name__}.")


@dataclasses.dataclass
class _Pass:
    """What one pass over a source produced."""

    rows: int
    digest: str
    size: int
    profile: dict[str, Any]
    report: ValidationReport | None
    inferred: Contract | None


def register(
    client: Client,
    name: str,
    data: Any,
    *,
    description: str | None = None,
    contract: Contract | str | None = None,
    strict: bool | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> DatasetVersion:
    check_name(name)
    stat = fingerprint(data)
    with client.store.read() as conn:
        dataset_pk = datasets_repo.dataset_id(conn, name)
        if stat is not None:
            unchanged = datasets_repo.version_for_source(conn, dataset_pk, *stat)
            if unchanged is not None:
                return unchanged
        current = datasets_repo.latest_contract(conn, dataset_pk)
    source = open_source(data)
    given = _contract_from(contract)
    active = given or (
        Contract.from_yaml(current[1], source=f"contract of {name!r}") if current else None
    )
    if active is not None and strict is not None:
        active = dataclasses.replace(active, mode="strict" if strict else "warn")

    result = _single_pass(client, name, source, active, progress)

    with client.store.write(client.actor) as tx:
        dataset_pk = datasets_repo.lock_or_create(tx, name, description)
        existing = datasets_repo.version_by_digest(tx.conn, dataset_pk, result.digest)
        if existing is None:
            # A contract passed in, or inferred from a first version, becomes the dataset's
            # current one; a --strict/--warn override applies to this registration only.
            stored = given or result.inferred
            if stored is not None:
                contract_version = datasets_repo.add_contract(
                    tx, dataset_pk, name, stored.to_yaml()
                )
            else:
                contract_version = current[0] if current else None
            existing = datasets_repo.insert_version(
                tx,
                dataset_pk,
                name=name,
                digest=result.digest,
                rows=result.rows,
                size=result.size,
                schema=[
                    {"name": f.name, "type": str(f.type), "nullable": f.nullable}
                    for f in source.schema
                ],
                profile=result.profile,
                validation=None if result.report is None else result.report.to_dict(),
                contract_version=contract_version,
                status="valid" if result.report is None or result.report.passed else "warn",
                source=source.description,
                run_id=run_id,
            )
        if stat is not None:  # taken before the read: a change during it is seen next time
            datasets_repo.remember_source(tx, dataset_pk, *stat, existing.version)
    return existing


def _single_pass(
    client: Client, name: str, source: Source, contract: Contract | None, progress: Progress | None
) -> _Pass:
    import pyarrow.parquet as pq

    profiler = Profiler(source.schema)
    checker = ContractChecker(contract, source.schema) if contract is not None else None
    rows = 0
    with client.blobs.writer() as sink:
        # Dictionary pages pay off for text; for numbers they cost ~40% of the write time.
        text = [
            f.name
            for f in source.schema
            if pa.types.is_string(f.type) or pa.types.is_binary(f.type)
        ]
        with pq.ParquetWriter(
            sink, source.schema, use_dictionary=text, **_PARQUET_OPTIONS
        ) as writer:
            for group in _row_groups(source.batches):
                for batch in group.to_batches():
                    profiler.update(batch)
                    if checker is not None:
                        checker.update(batch, rows)
                    rows += batch.num_rows
                writer.write_table(group, row_group_size=ROW_GROUP_ROWS)
                if progress is not None:
                    progress(rows)
        if rows == 0:
            raise InvalidInput(
                f"The data for dataset {name!r} ({source.description}) has no rows.",
                hint="Register a source with at least one row.",
            )
        report = checker.report() if checker is not None else None
        if (
            report is not None
            and not report.passed
            and contract is not None
            and contract.mode == "strict"
        ):
            _audit_refusal(client, name, source, report)
            raise ContractViolation(name, report)
    assert sink.info is not None
    profile = profiler.finish()
    inferred = infer_contract(source.schema, profile) if contract is None else None
    return _Pass(rows, sink.info.digest, sink.info.size, profile.to_dict(), report, inferred)


def _row_groups(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Regroup batches of any size into tables of exactly ROW_GROUP_ROWS rows (the last: fewer)."""
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= ROW_GROUP_ROWS:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, ROW_GROUP_ROWS)
            rest = table.slice(ROW_GROUP_ROWS)
            pending = rest.to_batches() if rest.num_rows else []
            pending_rows = rest.num_rows
    if pending_rows:
        yield pa.Table.from_batches(pending)


def _audit_refusal(client: Client, name: str, source: Source, report: ValidationReport) -> None:
    with client.store.write(client.actor) as tx:
        tx.audit(
            "dataset.refuse",
            "dataset",
            name,
            {"source": source.description, "failures": report.summary()},
        )


def validate(
    client: Client, name: str, data: Any, contract: Contract | str | None = None
) -> ValidationReport:
    """Check ``data`` against the dataset's contract (or ``contract``) without storing anything."""
    check_name(name)
    source = open_source(data)
    active = _contract_from(contract)
    if active is None:
        try:
            current = client.dataset_contract(name)
        except (NotFound, InvalidInput):
            raise InvalidInput(
                f"Dataset {name!r} has no contract to validate against.",
                hint="Register a first version (its contract is inferred) or pass a contract.",
            ) from None
        active = Contract.from_yaml(current, source=f"contract of {name!r}")
    checker = ContractChecker(active, source.schema)
    rows = 0
    for batch in source.batches:
        checker.update(batch, rows)
        rows += batch.num_rows
    return checker.report()
