"""Registering, loading, validating, diffing and tracing datasets, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard import data as sy_data
from shipyard.errors import IntegrityError, InvalidInput, NotFound


@pytest.fixture
def client(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    return sy.Client()


def credit(rows: int = 200, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "income": rng.normal(50_000 + shift, 10_000, rows),
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["north", "south", "east"], rows),
            "defaulted": rng.random(rows) < 0.1,
        }
    )


def blob_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "blobs").rglob("*") if p.is_file() and "sha256" in p.parts]


# ---------------------------------------------------------------------- register


def test_register_and_load_round_trip(client: sy.Client) -> None:
    frame = credit()
    version = sy.register_dataset("credit", frame, description="loan book")
    assert (version.name, version.version, version.rows) == ("credit", 1, 200)
    assert version.digest.startswith("sha256:")
    assert [c["name"] for c in version.schema] == list(frame.columns)
    assert version.profile["columns"]["income"]["count"] == 200
    loaded = sy.load_dataset("credit")
    pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)
    assert sy.load_dataset("credit@1", format="arrow").num_rows == 200


def test_the_same_rows_are_the_same_version_whatever_the_source(
    client: sy.Client, tmp_path: Path
) -> None:
    frame = credit()
    first = sy.register_dataset("credit", frame)
    csv = tmp_path / "credit.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "credit.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=7)
    assert sy.register_dataset("credit", pa.Table.from_pandas(frame)).version == 1
    assert sy.register_dataset("credit", parquet).version == 1
    assert sy.register_dataset("credit", frame.iloc[:100]).version == 2
    assert first.digest == sy_data.get_dataset("credit", 1).digest
    assert len(sy_data.dataset_versions("credit")) == 2


def test_an_unchanged_file_is_not_read_again(
    client: sy.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = tmp_path / "credit.csv"
    credit().to_csv(csv, index=False)
    first = sy.register_dataset("credit", csv)
    from shipyard.data import _ingest

    monkeypatch.setattr(_ingest, "_open_file", lambda path: pytest.fail("the file was read again"))
    assert sy.register_dataset("credit", csv) == first


def test_a_folder_of_files_registers_as_one_version(client: sy.Client, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = credit(300)
    for index, part in enumerate((frame.iloc[:100], frame.iloc[100:])):
        part.to_csv(folder / f"part-{index}.csv", index=False)
    version = sy.register_dataset("credit", folder)
    assert version.rows == 300
    assert len(sy.load_dataset("credit")) == 300


def test_registration_inside_a_run_is_traced_both_ways(client: sy.Client) -> None:
    with sy.start_run(experiment="prep") as prep:
        raw = sy.register_dataset("raw", credit())
    with sy.start_run(experiment="train") as train:
        sy.load_dataset("raw")
        features = sy.register_dataset("features", credit(50))
    assert raw.run_id == prep.run_id
    graph = sy.lineage(f"dataset:raw@{raw.version}")
    relations = {(e.source, e.target, e.relation) for e in graph.edges}
    assert (f"run:{prep.run_id}", "dataset:raw@1", "produced") in relations
    assert ("dataset:raw@1", f"run:{train.run_id}", "input") in relations
    assert (f"run:{train.run_id}", f"dataset:features@{features.version}", "produced") in relations
    assert graph.nodes["dataset:raw@1"].startswith("raw@1")


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "x@1", "dataset:x", "a b", "-x", "x" * 129, 3])
def test_bad_dataset_names_are_refused_and_nothing_is_stored(
    client: sy.Client, tmp_path: Path, bad: object
) -> None:
    with pytest.raises(InvalidInput):
        sy.register_dataset(bad, credit())  # type: ignore[arg-type]
    assert sy_data.list_datasets() == []
    assert blob_files(tmp_path) == []


# --------------------------------------------------------------------- bad input


def _write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


BAD_SOURCES = {
    "missing": (lambda tmp: tmp / "absent.csv", "No file or folder"),
    "empty": (lambda tmp: _write(tmp, "empty.csv", b""), "is empty"),
    "header only": (lambda tmp: _write(tmp, "header.csv", b"a,b\n"), "has no rows"),
    "ragged": (
        lambda tmp: _write(tmp, "ragged.csv", b"a,b\n1,2\n3\n4,5\n"),
        "line 3: expected 2 fields",
    ),
    "duplicate columns": (
        lambda tmp: _write(tmp, "dup.csv", b"a,a\n1,2\n"),
        "duplicate column names: 'a'",
    ),
    "empty column name": (
        lambda tmp: _write(tmp, "blank.csv", b"a,\n1,2\n"),
        "Column 2 .* empty name",
    ),
    "mixed types": (
        lambda tmp: _write(
            tmp, "mixed.csv", b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(100)) + b"oops,x\n"
        ),
        "line 102, column 'a': 'oops' is not a number",
    ),
    "header not utf-8": (
        lambda tmp: _write(tmp, "latin1.csv", b"caf\xe9,b\n1,2\n"),
        "not UTF-8 text .*0xe9",
    ),
    "unsupported format": (
        lambda tmp: _write(tmp, "data.xlsx", b"PK\x03\x04"),
        "Unsupported file format",
    ),
    "unreadable parquet": (
        lambda tmp: _write(tmp, "broken.parquet", b"not parquet at all"),
        "not readable Parquet",
    ),
    "empty folder": (
        lambda tmp: (tmp / "nothing").mkdir() or tmp / "nothing",
        "holds no CSV or Parquet",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SOURCES))
def test_bad_sources_are_refused_naming_the_problem_and_nothing_is_stored(
    client: sy.Client, tmp_path: Path, case: str
) -> None:
    make, message = BAD_SOURCES[case]
    source = make(tmp_path)
    with pytest.raises(InvalidInput, match=message):
        sy.register_dataset("credit", source)
    assert sy_data.list_datasets() == []
    assert blob_files(tmp_path) == []


def test_a_dataframe_column_of_mixed_types_is_named(client: sy.Client) -> None:
    with pytest.raises(InvalidInput, match="Column 'a' of the DataFrame mixes types"):
        sy.register_dataset("credit", pd.DataFrame({"a": [1, "x", 2.5]}))


def test_a_tampered_blob_is_refused_on_load(client: sy.Client, tmp_path: Path) -> None:
    version = sy.register_dataset("credit", credit())
    (stored,) = [p for p in blob_files(tmp_path) if p.name == version.digest.split(":")[1]]
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(stored, 0o644)
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        sy.load_dataset("credit")


def test_unknown_datasets_and_versions_are_not_found(client: sy.Client) -> None:
    with pytest.raises(NotFound, match="dataset 'nope'"):
        sy.load_dataset("nope")
    sy.register_dataset("credit", credit())
    with pytest.raises(NotFound, match="credit@7"):
        sy.load_dataset("credit@7")


# ---------------------------------------------------------------------- contracts


def test_a_first_version_gets_an_inferred_contract_that_later_versions_meet(
    client: sy.Client,
) -> None:
    first = sy.register_dataset("credit", credit(seed=1))
    assert first.contract_version == 1
    assert first.validation is None
    document = sy_data.dataset_contract("credit")
    assert "income" in document
    second = sy.register_dataset("credit", credit(seed=2))
    assert second.status == "valid"
    assert second.validation is not None
    assert second.validation["passed"] is True


def test_warn_mode_stores_a_failing_version_with_its_report(client: sy.Client) -> None:
    sy.register_dataset("credit", credit())
    broken = credit(seed=3)
    broken["region"] = "atlantis"
    version = sy.register_dataset("credit", broken, strict=False)
    assert version.status == "warn"
    failures = version.validation["failures"]
    assert any(f["column"] == "region" and f["failed"] == len(broken) for f in failures)


def test_strict_mode_refuses_stores_nothing_and_audits_the_refusal(
    client: sy.Client, tmp_path: Path
) -> None:
    sy.register_dataset("credit", credit())
    blobs_before = blob_files(tmp_path)
    broken = credit(seed=4).drop(columns=["age"])
    with pytest.raises(sy_data.ContractViolation, match="age"):
        sy.register_dataset("credit", broken, strict=True)
    assert len(sy_data.dataset_versions("credit")) == 1
    assert blob_files(tmp_path) == blobs_before
    refusals = [
        e for e in client.audit_events(object_type="dataset") if e.action == "dataset.refuse"
    ]
    assert len(refusals) == 1


def test_validate_checks_without_storing(client: sy.Client, tmp_path: Path) -> None:
    sy.register_dataset("credit", credit())
    broken = credit(seed=5)
    broken.loc[3, "age"] = 500
    path = tmp_path / "next.parquet"
    broken.to_parquet(path, index=False)
    report = sy_data.validate_dataset("credit", path)
    assert report.passed is False
    assert len(sy_data.dataset_versions("credit")) == 1


def test_an_edited_contract_becomes_the_next_contract_version(client: sy.Client) -> None:
    sy.register_dataset("credit", credit())
    edited = sy_data.dataset_contract("credit").replace("mode: warn", "mode: strict")
    assert sy_data.set_dataset_contract("credit", edited) == 2
    with pytest.raises(InvalidInput):
        sy_data.set_dataset_contract("credit", "columns: [this is not a contract")


# ---------------------------------------------------------------------------- diff


def test_diff_reports_schema_rows_and_drift(client: sy.Client) -> None:
    sy.register_dataset("credit", credit(1000))
    changed = credit(1200, shift=30_000, seed=1).drop(columns=["defaulted"])
    changed["score"] = 1.0
    sy.register_dataset("credit", changed, strict=False)
    result = sy.data.diff_datasets("credit", 1, 2)
    assert (result.rows_old, result.rows_new) == (1000, 1200)
    assert result.added_columns == ["score"]
    assert result.removed_columns == ["defaulted"]
    drift = {c.column: c for c in result.columns}
    assert drift["income"].drift is True
    assert drift["age"].drift is False
    assert drift["region"].test == "psi"


# ----------------------------------------------------------------------------- export


def test_export_writes_parquet_or_csv_atomically(client: sy.Client, tmp_path: Path) -> None:
    sy.register_dataset("credit", credit())
    parquet = sy_data.export_dataset("credit@1", tmp_path / "out" / "credit.parquet")
    assert pq.read_table(parquet).num_rows == 200
    csv = sy_data.export_dataset("credit@1", tmp_path / "credit.csv")
    assert len(pd.read_csv(csv)) == 200
    with pytest.raises(InvalidInput, match="format"):
        sy_data.export_dataset("credit@1", tmp_path / "credit.xlsx")
