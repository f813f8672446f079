"""Turn what a user hands us into one stream of normalised Arrow record batches.

Sources: a pandas DataFrame, a pyarrow Table or RecordBatchReader, or a path
to a CSV or Parquet file or to a folder of them. Files are read in blocks,
never whole. Every refusal names the file, the column or the line, and what to
do about it; nothing is stored when a source is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from shipyard.errors import InvalidInput

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Column types are inferred from a sample this large at the file's start ...
CSV_SAMPLE_SIZE = 4 << 20
#: ... and the file is then streamed in blocks this large with those types fixed.
#: Small blocks keep the reader's read-ahead (several blocks per thread) in tens
#: of MiB, and parse faster than large ones.
CSV_BLOCK_SIZE = 1 << 20
BATCH_ROWS = 65_536


@dataclasses.dataclass
class Source:
    """A readable source: its normalised schema and its batches, read once."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    #: Where the rows came from, for the version's record: a resolved path, "pandas DataFrame".
    description: str


def open_source(data: Any) -> Source:
    if isinstance(data, str | os.PathLike):
        return _open_path(Path(data))
    if isinstance(data, pa.Table):
        schema = _normalise_schema(data.schema, where="the table")
        return Source(
            schema, _cast_batches(iter(data.to_batches(BATCH_ROWS)), schema), "pyarrow Table"
        )
    if isinstance(data, pa.RecordBatchReader):
        schema = _normalise_schema(data.schema, where="the record batch reader")
        return Source(schema, _cast_batches(iter(data), schema), "pyarrow RecordBatchReader")
    if type(data).__name__ == "DataFrame" and type(data).__module__.startswith("pandas"):
        return _open_dataframe(data)
    raise InvalidInput(
        f"Cannot register a {type(data).__name__} as a dataset.",
        hint="Pass a pandas DataFrame, a pyarrow Table, or a path to a CSV or Parquet file or folder.",
    )


# --------------------------------------------------------------------------- schemas

_PLAIN_TYPES = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}


def _normalise_type(arrow_type: pa.DataType) -> pa.DataType:
    """One spelling per logical type, so equal rows give equal bytes whatever their source."""
    if pa.types.is_dictionary(arrow_type):
        return _normalise_type(arrow_type.value_type)
    return _PLAIN_TYPES.get(arrow_type, arrow_type)


def _check_names(names: list[Any], *, where: str) -> None:
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(
                f"Column {index + 1} of {where} has an empty name.",
                hint="Give every column a name (a header row in a CSV file).",
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(
            f"{where[0].upper()}{where[1:]} has duplicate column names: {', '.join(map(repr, duplicates))}.",
            hint="Rename the columns so that each name appears once.",
        )


def _normalise_schema(schema: pa.Schema, *, where: str) -> pa.Schema:
    _check_names(schema.names, where=where)
    return pa.schema([pa.field(f.name, _normalise_type(f.type), nullable=True) for f in schema])


def _cast_batches(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if batch.schema.equals(schema, check_metadata=False):
            yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
        else:
            yield batch.cast(schema)


# ------------------------------------------------------------------------ dataframes


def _open_dataframe(frame: Any) -> Source:
    names = [str(c) if not isinstance(c, str) else c for c in frame.columns]
    _check_names(names, where="the DataFrame")
    arrays = []
    for name, column in zip(names, frame.columns, strict=True):
        try:
            arrays.append(pa.array(frame[column], from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(
                f"Column {name!r} of the DataFrame mixes types: {_first_line(exc)}.",
                hint="Give the column one type (e.g. df[col].astype(str), or pd.to_numeric(..., errors='coerce')).",
            ) from exc
    schema = _normalise_schema(
        pa.schema([pa.field(n, a.type) for n, a in zip(names, arrays, strict=True)]),
        where="the DataFrame",
    )
    table = pa.Table.from_arrays(arrays, names=names)
    return Source(
        schema, _cast_batches(iter(table.to_batches(BATCH_ROWS)), schema), "pandas DataFrame"
    )


# ----------------------------------------------------------------------------- files


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def _files_of(path: Path) -> list[Path]:
    """The CSV and Parquet files a path names: itself, or those below a folder, sorted."""
    if not path.exists():
        raise InvalidInput(f"No file or folder {str(path)!r}.", hint="Check the path.")
    resolved = path.resolve()
    if resolved.is_dir():
        files = sorted(p for p in resolved.rglob("*") if p.is_file() and _kind(p) is not None)
        if not files:
            raise InvalidInput(
                f"Folder {str(path)!r} holds no CSV or Parquet files.",
                hint=f"Supported endings: {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}.",
            )
        return files
    if _kind(resolved) is None:
        raise InvalidInput(
            f"Unsupported file format {resolved.name!r}.",
            hint=f"Use CSV ({', '.join(CSV_SUFFIXES)}) or Parquet ({', '.join(PARQUET_SUFFIXES)}).",
        )
    return [resolved]


def fingerprint(data: Any) -> tuple[str, str] | None:
    """(resolved path, fingerprint of its files' stat data) for a path source, else None.

    Reads no file contents: an unchanged source is recognised from this alone.
    """
    if not isinstance(data, str | os.PathLike):
        return None
    path = Path(data)
    return str(path.resolve()), _fingerprint(_files_of(path))


def _open_path(path: Path) -> Source:
    files = _files_of(path)
    resolved = path.resolve()
    first_schema, first_batches = _open_file(files[0])
    schema = _normalise_schema(first_schema, where=f"file {str(files[0])!r}")

    def batches() -> Iterator[pa.RecordBatch]:
        yield from _cast_batches(first_batches, schema)
        for file in files[1:]:
            file_schema, file_batches = _open_file(file)
            if _normalise_schema(file_schema, where=f"file {str(file)!r}") != schema:
                raise InvalidInput(
                    f"File {str(file)!r} has columns {file_schema.names} of other types than "
                    f"{str(files[0])!r} ({schema.names}).",
                    hint="All files of a folder must share one schema.",
                )
            yield from _cast_batches(file_batches, schema)

    return Source(schema, batches(), str(resolved))


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(
            f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\0{stat.st_ino}\n".encode()
        )
    return digest.hexdigest()


def _open_file(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    try:
        if path.stat().st_size == 0:
            raise InvalidInput(
                f"File {str(path)!r} is empty.", hint="Register a file with a header and rows."
            )
        if _kind(path) == "parquet":
            return _open_parquet(path)
        return _open_csv(path)
    except PermissionError as exc:
        raise InvalidInput(f"Cannot read {str(path)!r}: permission denied.") from exc
    except OSError as exc:
        raise InvalidInput(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from exc


def _open_parquet(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(
            f"File {str(path)!r} is not readable Parquet: {_first_line(exc)}."
        ) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from parquet.iter_batches(batch_size=BATCH_ROWS)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInput(
                f"File {str(path)!r} is damaged Parquet: {_first_line(exc)}."
            ) from exc

    return parquet.schema_arrow, batches()


def _open_csv(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.csv as pacsv

    delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    try:
        sample = pacsv.open_csv(
            path,
            # One block and no read-ahead: only the sample is parsed.
            read_options=pacsv.ReadOptions(block_size=CSV_SAMPLE_SIZE, use_threads=False),
            parse_options=parse,
        )
        schema = sample.schema
        try:
            _refuse_mixed_text(path, delimiter, sample.read_next_batch())
        except StopIteration:
            pass  # a header without rows: the registration refuses it by its row count
        finally:
            sample.close()
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_SIZE),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(column_types=schema),
        )
    except pa.ArrowInvalid as exc:
        raise _csv_error(path, exc, delimiter, None) from exc
    except UnicodeDecodeError as exc:  # column names are decoded as UTF-8
        raise InvalidInput(
            f"The header of {str(path)!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}).",
            hint="Save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`.",
        ) from exc

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise _csv_error(path, exc, delimiter, schema) from exc
            yield batch

    return schema, batches()


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
#: A text column whose values are numbers but for a few is a numeric column with
#: stray values (a typo, "n/a", "?"): refused, rather than stored as text.
MIXED_NUMERIC_SHARE = 0.95


def _refuse_mixed_text(path: Path, delimiter: str, batch: pa.RecordBatch) -> None:
    import pyarrow.compute as pc

    for index, field in enumerate(batch.schema):
        if not pa.types.is_string(field.type):
            continue
        column = batch.column(index)
        present = column.drop_null()
        if len(present) == 0:
            continue
        numeric = pc.match_substring_regex(present, _NUMBER)
        numbers = pc.sum(numeric).as_py()
        share = numbers / len(present)
        if MIXED_NUMERIC_SHARE <= share < 1:
            stray = present.filter(pc.invert(numeric))[0].as_py()
            line = _scan(
                path, delimiter, lambda row, i=index, v=stray: len(row) > i and row[i] == v
            )
            raise InvalidInput(
                f"File {str(path)!r}, line {line}, column {field.name!r}: {stray!r} is not a number, "
                f"though {numbers:,} of the column's first {len(present):,} values are (the column "
                "mixes types).",
                hint="Fix or blank the stray values; quote all of the column's values to keep it as text.",
            )


_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")
_CONVERSION = re.compile(
    r"In CSV column #(\d+): CSV conversion error to (\S+): invalid value '(.*)'"
)


def _csv_error(
    path: Path, exc: pa.ArrowInvalid, delimiter: str, schema: pa.Schema | None
) -> InvalidInput:
    """Name the line (found by a second, plain scan: this is the error path only)."""
    message = _first_line(exc)
    if "Empty CSV file" in message:
        return InvalidInput(
            f"File {str(path)!r} is empty.", hint="Register a file with a header and rows."
        )
    if match := _RAGGED.search(message):
        expected = int(match.group(1))
        line = _scan(path, delimiter, lambda row: len(row) != expected)
        return InvalidInput(
            f"File {str(path)!r}, line {line}: expected {expected} fields like the header, "
            f"got {match.group(2)}.",
            hint="Fix the ragged row (a missing or extra delimiter, or an unquoted delimiter in a value).",
        )
    if (match := _CONVERSION.search(message)) and schema is not None:
        index, target, value = int(match.group(1)), match.group(2), match.group(3)
        column = schema.names[index]
        line = _scan(path, delimiter, lambda row: len(row) > index and row[index] == value)
        return InvalidInput(
            f"File {str(path)!r}, line {line}, column {column!r}: {value!r} is not {target} "
            f"like the values before it (the column mixes types).",
            hint="Clean the value, or quote the column's values so it reads as text.",
        )
    return InvalidInput(f"File {str(path)!r} is not readable CSV: {message}.")


def _scan(path: Path, delimiter: str, is_bad) -> str:  # type: ignore[no-untyped-def]
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        next(reader, None)
        for row in reader:
            if is_bad(row):
                return str(reader.line_num)
    return "?"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
