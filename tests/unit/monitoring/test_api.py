"""drift_report's inputs (DataFrame, Arrow, files, dataset versions, prepared references) and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard.errors import IntegrityError, InvalidInput, NotFound
from shipyard.monitoring import Reference, drift_report, prepare_reference


def credit(rows: int = 2000, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000 + shift, 10_000, rows),
            "age": rng.integers(18, 90, rows),
            "region": rng.choice(["north", "south", "east"], rows),
            "defaulted": rng.random(rows) < 0.1,
        }
    )


REF, CUR = credit(seed=1), credit(shift=15_000, seed=2)
EXPECTED = {"income": True, "age": False, "region": False, "defaulted": False}


def drifts(report) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    return {name: c.drift for name, c in report.columns.items()}


def test_dataframes_get_the_automatic_test_per_column() -> None:
    report = drift_report(REF, CUR)
    assert drifts(report) == EXPECTED
    assert {n: c.test for n, c in report.columns.items()} == {
        "income": "wasserstein",
        "age": "wasserstein",
        "region": "jensen_shannon",
        "defaulted": "jensen_shannon",
    }
    small = drift_report(REF.iloc[:500], CUR.iloc[:500])
    assert [c.test for c in small.columns.values()] == ["ks", "ks", "chi_square", "chi_square"]


def test_arrow_tables_batch_readers_and_files_give_the_same_report(tmp_path: Path) -> None:
    expected = drift_report(REF, CUR).to_dict()
    table = pa.Table.from_pandas(CUR, preserve_index=False)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=300))
    csv, parquet = tmp_path / "cur.csv", tmp_path / "cur.parquet"
    CUR.to_csv(csv, index=False)
    pq.write_table(table, parquet, row_group_size=500)
    for current in (table, reader, str(parquet), parquet):
        assert drift_report(pa.Table.from_pandas(REF), current).to_dict() == expected
    from_csv = drift_report(REF, csv).to_dict()
    assert {n: c["drift"] for n, c in from_csv["columns"].items()} == EXPECTED


def test_a_prepared_reference_survives_bytes_and_gives_the_same_report() -> None:
    prepared = prepare_reference(REF)
    blob = prepared.to_bytes()
    assert blob == prepare_reference(REF).to_bytes()
    again = Reference.from_bytes(blob)
    assert drift_report(again, CUR).to_dict() == drift_report(REF, CUR).to_dict()
    assert drift_report(again, CUR, columns=["region"]).to_dict()["columns"].keys() == {"region"}


def test_damaged_reference_bytes_are_refused() -> None:
    blob = prepare_reference(REF).to_bytes()
    with pytest.raises(InvalidInput, match="not a Shipyard drift reference"):
        Reference.from_bytes(b"garbage" + blob)
    with pytest.raises(IntegrityError, match="damaged"):
        Reference.from_bytes(blob[:-100])


def test_columns_and_tests_choose_what_runs() -> None:
    report = drift_report(REF, CUR, columns=["income", "region"], tests={"income": "psi"})
    assert list(report.columns) == ["income", "region"]
    assert (report["income"].test, report["region"].test) == ("psi", "jensen_shannon")
    # One name for all: columns it cannot read stay automatic.
    mixed = drift_report(REF, CUR, tests="ks")
    assert [c.test for c in mixed.columns.values()] == [
        "ks",
        "ks",
        "jensen_shannon",
        "jensen_shannon",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tests": "kolmogorov"}, "Unknown drift test 'kolmogorov'"),
        ({"tests": {"income": "nope"}}, "Unknown drift test 'nope' for column 'income'"),
        ({"columns": ["salary"]}, r"\['salary'\] are not in the reference"),
        ({"tests": {"salary": "ks"}}, r"\['salary'\]"),
        ({"tests": {"region": "ks"}}, "column 'region' is categorical"),
        ({"columns": ["region"], "tests": "wasserstein"}, "column 'region' is categorical"),
        ({"tests": {"income": "chi_square"}}, "column 'income' is numeric"),
        ({"columns": []}, "non-empty list"),
    ],
)
def test_bad_arguments_raise_invalid_input_naming_them(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        drift_report(REF, CUR, **kwargs)


def test_an_empty_reference_or_an_unreadable_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"reference .* has no rows"):
        drift_report(REF.iloc[:0], CUR)
    with pytest.raises(InvalidInput, match="Cannot read a list"):
        drift_report(REF, [1, 2, 3])
    with pytest.raises(InvalidInput, match="No file or folder"):
        drift_report(REF, str(tmp_path / "missing.csv"))


# ------------------------------------------------------------------ dataset versions


@pytest.fixture
def client(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sy.Client:
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    return sy.Client()


def test_dataset_versions_are_read_from_the_store(client: sy.Client) -> None:
    sy.register_dataset("credit", REF)
    sy.register_dataset("credit", CUR)
    expected = drift_report(REF, CUR).to_dict()
    assert drift_report("dataset:credit@1", "credit@2").to_dict() == expected
    assert drift_report("credit@1", CUR, client=client).to_dict() == expected
    prepared = prepare_reference("dataset:credit@1", ["income"])
    assert drift_report(prepared, "credit@2")["income"].drift is True
    with pytest.raises(NotFound):
        drift_report("dataset:credit@9", CUR)
