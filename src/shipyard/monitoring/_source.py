"""Read a reference or a current window one column at a time, so memory holds about one column.

- a pyarrow Table, or a pandas DataFrame: columns are taken from memory one by one;
- a Parquet file, or a dataset version (its verified Parquet bytes): each
  column is read on its own from the file;
- a RecordBatchReader, a CSV file or a folder of files: read once, batch by
  batch, into one temporary Arrow IPC stream file per column, so a column is
  read back without the others.

A column can also be read in batches (:meth:`Source.batches`), for windows
too large to hold one column of (see ``_tally``).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shipyard.errors import InvalidInput
from shipyard.monitoring._column import Column, Kind, column_kind, from_arrow

if TYPE_CHECKING:
    from shipyard.tracking import Client

_FILE_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv", ".parquet", ".pq")
_DATASET = re.compile(r"dataset:.+|[^/\\\s]+@\d+")
#: Parquet read through a 1 MiB buffer rather than whole column chunks pre-read: at
#: 1M-row row groups that keeps ~80 MiB of read-ahead off the peak per column.
_STREAMED = {"pre_buffer": False, "buffer_size": 1 << 20}


@dataclass
class Source:
    """Rows, schema, and a reader of one column at a time, whole or in batches."""

    schema: pa.Schema
    rows: int
    description: str
    read: Callable[[str], pa.ChunkedArray | pa.Array]
    read_batches: Callable[[str, int], Iterator[pa.Array]] | None = None

    @property
    def names(self) -> list[str]:
        return list(self.schema.names)

    def type(self, name: str) -> pa.DataType:
        return self.schema.field(name).type

    def kind(self, name: str) -> Kind | None:
        return column_kind(self.type(name))

    def column(self, name: str, kind: Kind) -> Column:
        return from_arrow(name, self.read(name), kind)

    def batches(self, name: str, rows: int) -> Iterator[pa.Array]:
        """The column in arrays of at most ``rows`` rows."""
        if self.read_batches is not None:
            yield from self.read_batches(name, rows)
            return
        whole = self.read(name)
        chunks = whole.chunks if isinstance(whole, pa.ChunkedArray) else [whole]
        for chunk in chunks:
            for start in range(0, len(chunk), rows):
                yield chunk.slice(start, rows)


@contextlib.contextmanager
def open_table(data: Any, *, role: str, client: Client | None = None) -> Iterator[Source]:
    """A :class:`Source` over ``data``; ``role`` ("reference", "current") names it in errors."""
    with contextlib.ExitStack() as stack:
        yield _open(data, role, client, stack)


def _open(data: Any, role: str, client: Client | None, stack: contextlib.ExitStack) -> Source:
    if isinstance(data, pa.Table):
        _check_names(data.schema.names, role)
        return Source(data.schema, data.num_rows, f"a pyarrow Table as {role}", data.column)
    if isinstance(data, pa.RecordBatch):
        return _open(pa.Table.from_batches([data]), role, client, stack)
    if _is_dataframe(data):
        return _open_dataframe(data, role)
    if isinstance(data, pa.RecordBatchReader):
        return _spool(data, f"a RecordBatchReader as {role}", stack)
    if isinstance(data, os.PathLike):
        return _open_path(Path(data), role, stack)
    if isinstance(data, str):
        text = data.strip()
        if _looks_like_dataset(text):
            return _open_dataset(text, role, client)
        return _open_path(Path(text), role, stack)
    raise InvalidInput(
        f"Cannot read a {type(data).__name__} as the {role} data.",
        hint="Pass a pandas DataFrame, a pyarrow Table or RecordBatchReader, a CSV or Parquet "
        "path, a dataset reference such as 'dataset:credit@3', or a prepared Reference.",
    )


def _looks_like_dataset(text: str) -> bool:
    if text.startswith("dataset:"):
        return True
    if os.path.exists(text) or text.lower().endswith(_FILE_SUFFIXES):
        return False
    return bool(_DATASET.fullmatch(text)) or ("/" not in text and "\\" not in text)


def _is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and type(data).__module__.startswith("pandas")


def _check_names(names: list[str], role: str) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(
            f"The {role} data names a column twice: {repeated}.",
            hint="Rename the columns so each name appears once.",
        )


def _open_dataframe(frame: Any, role: str) -> Source:
    names = [c if isinstance(c, str) else str(c) for c in frame.columns]
    _check_names(names, role)
    by_name = dict(zip(names, frame.columns, strict=True))

    def convert(name: str) -> pa.Array:
        series = frame[by_name[name]]
        if getattr(series.dtype, "kind", None) == "f" and type(series.dtype).__module__ == "numpy":
            # No copy, no null bitmap: NaN is no usable value anyway.
            return pa.array(series.to_numpy(copy=False))
        try:
            return pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidInput(
                f"Column {name!r} of the {role} DataFrame mixes types: {str(exc).splitlines()[0]}.",
                hint="Give the column one type (e.g. df[col].astype(str), or "
                "pd.to_numeric(..., errors='coerce')).",
            ) from exc

    # Types come from a zero-row conversion of each column, so no column is copied here.
    fields = [pa.field(n, convert_type(frame[by_name[n]], role, n)) for n in names]
    return Source(pa.schema(fields), len(frame), f"a pandas DataFrame as {role}", convert)


def convert_type(series: Any, role: str, name: str) -> pa.DataType:
    try:
        return pa.array(series.iloc[:0], from_pandas=True).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    try:
        return pa.array(series.head(1000), from_pandas=True).type
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(
            f"Column {name!r} of the {role} DataFrame mixes types: {str(exc).splitlines()[0]}.",
            hint="Give the column one type.",
        ) from exc


def _open_parquet(reopen: Callable[[], Any], description: str) -> Source:
    """A Source over the Parquet data that ``reopen()`` gives a fresh handle on each call."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(reopen(), **_STREAMED)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"{description} is not readable Parquet: {exc}.") from exc
    schema = parquet.schema_arrow
    _check_names(schema.names, description)

    lock = threading.Lock()  # a ParquetFile is not safe to read from two threads at once

    def read(name: str) -> pa.ChunkedArray:
        with lock:
            return parquet.read(columns=[name], use_threads=False).column(0)

    def read_batches(name: str, rows: int) -> Iterator[pa.Array]:
        # A ParquetFile of its own: batches are read lazily, possibly in several threads.
        with pq.ParquetFile(reopen(), **_STREAMED) as own:
            for batch in own.iter_batches(batch_size=rows, columns=[name], use_threads=False):
                yield batch.column(0)

    return Source(schema, parquet.metadata.num_rows, description, read, read_batches)


def _open_path(path: Path, role: str, stack: contextlib.ExitStack) -> Source:
    if not path.exists():
        raise InvalidInput(
            f"No file or folder {str(path)!r} for the {role} data.",
            hint="Give a CSV or Parquet path, or a dataset reference such as dataset:credit@3.",
        )
    name = path.name.lower()
    if path.is_file() and name.endswith((".parquet", ".pq")):
        return _open_parquet(lambda: str(path), f"file {str(path)!r}")
    from shipyard.data import _ingest  # pandas, CSV readers: only for files that need them

    opened = _ingest.open_source(path)
    reader = pa.RecordBatchReader.from_batches(opened.schema, opened.batches)
    return _spool(reader, f"file {str(path)!r}", stack)


def _open_dataset(ref: str, role: str, client: Client | None) -> Source:
    from shipyard import data as data_api
    from shipyard.data._api import _client_and_run

    found = data_api.get_dataset(ref, client=client)
    chosen, run_id = _client_and_run(client)
    blob = chosen._dataset_bytes(found)
    if run_id is not None:
        chosen.record_input(run_id, found.name, found.version)
    return _open_parquet(lambda: pa.BufferReader(blob), f"dataset:{found.name}@{found.version}")


def _spool(reader: pa.RecordBatchReader, description: str, stack: contextlib.ExitStack) -> Source:
    """Write the stream to one temporary Arrow IPC file per column (see the module docstring)."""
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="shipyard-drift-"))
    schema = reader.schema
    _check_names(schema.names, description)
    paths = {name: os.path.join(folder, f"column-{i}.arrow") for i, name in enumerate(schema.names)}
    rows = 0
    one_column = [pa.schema([field]) for field in schema]
    with contextlib.ExitStack() as files:
        writers = [
            files.enter_context(
                pa.ipc.new_stream(files.enter_context(pa.OSFile(paths[field.name], "wb")), alone)
            )
            for field, alone in zip(schema, one_column, strict=True)
        ]
        for batch in reader:
            rows += batch.num_rows
            for writer, alone, column in zip(writers, one_column, batch.columns, strict=True):
                writer.write_batch(pa.record_batch([column], schema=alone))

    def read_batches(name: str, _rows: int) -> Iterator[pa.Array]:
        with pa.OSFile(paths[name]) as file, pa.ipc.open_stream(file) as stream:
            for batch in stream:
                yield batch.column(0)

    def read(name: str) -> pa.ChunkedArray:
        with pa.OSFile(paths[name]) as file, pa.ipc.open_stream(file) as stream:
            return stream.read_all().column(0)

    return Source(schema, rows, description, read, read_batches)
