"""A model's signature: the columns it takes and what it returns, and strict input checks.

:func:`infer_signature` reads an input example (and, given the model, runs it
once on that example); :meth:`Signature.validate` turns a request into exactly
the frame the model was shown, or raises :class:`~shipyard.errors.InvalidInput`
saying which column, what was expected, what came and how to fix it. Serving
relies on that to answer bad requests with a 4xx instead of a stack trace.

Inference rules
---------------
- The example is a pandas DataFrame (column names must be strings), a dict of
  column name to list, or a 2-D numpy array, whose columns are named ``"0"``,
  ``"1"``, ... by position.
- Each column's type is its Arrow type as a string (``"int64"``, ``"double"``,
  ``"bool"``, ``"string"``, ``"timestamp[us]"``, ``"timestamp[us, tz=UTC]"``);
  ``large_string`` is written ``string``. A pandas categorical column records
  its value type and its categories (in order).
- ``nullable`` is true when the example column has a missing value (``None``,
  ``NaN``, ``NaT``, ``pd.NA``): the example is the only evidence of what the
  model accepts, so give one that shows the nulls it must take.

Validation rules (:meth:`Signature.validate`)
---------------------------------------------
- Accepted: a DataFrame, a dict of column name to list, a list of records
  (dicts), and, for a signature inferred from an array, a 2-D array or list of
  rows. Columns are returned in signature order; extra columns are dropped.
- A column whose Arrow type equals the signature's is returned unchanged.
- Casts happen only when no value changes: an integer to a wider integer or to
  a float, a float holding only whole numbers to an integer (JSON sends ``3.0``
  for ``3``), a timestamp to another unit, an ISO 8601 string to a timestamp.
  Anything else is refused: a string of digits is not a number, 0 and 1 are not
  booleans, a naive timestamp does not get a time zone.
- An integer or boolean column that allows nulls comes back as pandas' masked
  ``Int64``/``boolean`` type when it was cast, so a null stays a null.
- A categorical column accepts only its recorded categories.
- NaN counts as missing, as it does in pandas.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["ColumnSpec", "Signature", "infer_signature"]

_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=(.+))?\]")
_MAX_ROWS_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One input column: its name, Arrow type, whether it may hold nulls, and categories."""

    name: str
    type: str
    nullable: bool
    #: The allowed values, in order, for a pandas categorical column; ``None`` otherwise.
    categories: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.categories is not None:
            out["categories"] = list(self.categories)
        return out


@dataclasses.dataclass(frozen=True)
class Signature:
    """The columns a model takes and what it returns.

    ``outputs`` holds ``"predict"`` and ``"predict_proba"`` as
    ``{"type": <Arrow type>, "shape": [-1, ...]}`` and ``"classes"`` as a list,
    each present only when the model has it.
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_dict` reads back."""
        return {"inputs": [spec.to_dict() for spec in self.inputs], "outputs": dict(self.outputs)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Read what :meth:`to_dict` wrote; :class:`InvalidInput` if it is malformed."""
        try:
            inputs = tuple(
                ColumnSpec(
                    name=_expect(item["name"], str, "name"),
                    type=_expect(item["type"], str, "type"),
                    nullable=_expect(item["nullable"], bool, "nullable"),
                    categories=(
                        None if item.get("categories") is None else tuple(item["categories"])
                    ),
                )
                for item in data["inputs"]
            )
            outputs = dict(data.get("outputs") or {})
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(
                f"A signature must be {{'inputs': [{{'name', 'type', 'nullable'}}, ...], "
                f"'outputs': {{...}}}}; this one is malformed ({type(exc).__name__}: {exc}).",
                hint="Build it with infer_signature(example, model) and pass .to_dict().",
            ) from exc
        names = [spec.name for spec in inputs]
        if len(set(names)) != len(names):
            raise InvalidInput(f"A signature names each column once; got {names}.")
        return cls(inputs, outputs)

    @property
    def column_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def validate(self, data: Any) -> pd.DataFrame:
        """Return ``data`` as a DataFrame of exactly these columns and types, or explain why not."""
        import pandas as pd

        frame = self._frame(data)
        names = self.column_names
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        if duplicated:
            raise InvalidInput(
                f"The input has the column(s) {duplicated} more than once.",
                hint="Send each column once.",
            )
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise InvalidInput(
                f"The input lacks the column(s) {missing}; the model takes {names}.",
                hint="Add them to every row (as null only where the column allows nulls).",
            )
        columns = {spec.name: _conform(spec, frame[spec.name]).array for spec in self.inputs}
        return pd.DataFrame(columns, index=frame.index)

    def _frame(self, data: Any) -> pd.DataFrame:
        """The request as a DataFrame, from any of the accepted shapes."""
        import numpy as np
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, Mapping):
            return _frame_from_columns(data)
        positional = self.column_names == [str(i) for i in range(len(self.inputs))]
        if isinstance(data, np.ndarray) or (
            isinstance(data, list | tuple)
            and data
            and all(isinstance(r, list | tuple) for r in data)
        ):
            if not positional:
                raise InvalidInput(
                    f"The model takes named columns {self.column_names}; got a table of rows "
                    "without names.",
                    hint="Send a dict of columns or a list of records (one dict per row).",
                )
            return _frame_from_rows(data, len(self.inputs))
        if isinstance(data, list | tuple):
            return _frame_from_records(data, self.column_names)
        raise InvalidInput(
            f"Expected a DataFrame, a dict of columns or a list of records; got {type(data).__name__}.",
            hint='Send {"column": [value, ...], ...} or [{"column": value, ...}, ...].',
        )


def infer_signature(input_example: Any, model: Any = None) -> Signature:
    """The signature of ``input_example``, with the model's outputs on it when ``model`` is given.

    The model is run on the example (``predict``, and ``predict_proba`` when it
    has one); if that fails, the example does not fit the model and
    :class:`InvalidInput` says why.
    """
    import numpy as np

    frame = _example_frame(input_example)
    inputs = tuple(_infer_column(name, frame[name]) for name in frame.columns)
    outputs: dict[str, Any] = {}
    if model is not None:
        given = input_example if isinstance(input_example, np.ndarray) else frame
        try:
            results = {"predict": model.predict(given)}
            if hasattr(model, "predict_proba"):
                results["predict_proba"] = model.predict_proba(given)
        except Exception as exc:  # whatever the model raises, the example does not fit it
            raise InvalidInput(
                f"The input example does not fit the model: {type(exc).__name__}: {exc}",
                hint="Pass a few rows of the data the model was fitted on, with the same "
                "columns and types.",
            ) from exc
        outputs = {method: _output_spec(result) for method, result in results.items()}
        classes = getattr(model, "classes_", None)
        if classes is not None:
            outputs["classes"] = np.asarray(classes).tolist()
    return Signature(inputs, outputs)


# ---------------------------------------------------------------- inference


def _example_frame(example: Any) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame):
        frame = example
    elif isinstance(example, np.ndarray):
        if example.ndim != 2:
            raise InvalidInput(
                f"An array input example must be 2-D (rows x columns); got {example.ndim}-D.",
                hint="Reshape it, e.g. x.reshape(1, -1) for one row.",
            )
        frame = pd.DataFrame(example, columns=[str(i) for i in range(example.shape[1])])
    elif isinstance(example, Mapping):
        frame = _frame_from_columns(example)
    else:
        raise InvalidInput(
            f"An input example must be a DataFrame, a dict of columns or a 2-D array; "
            f"got {type(example).__name__}.",
            hint="Pass a few rows of the training data, e.g. X.head().",
        )
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise InvalidInput(
            f"Column names must be strings; the example has {bad!r}.",
            hint="Rename them (df.columns = df.columns.astype(str)) or pass a numpy array.",
        )
    if frame.columns.has_duplicates:
        raise InvalidInput(f"The example names a column twice: {list(frame.columns)}.")
    if len(frame) == 0:
        raise InvalidInput(
            "The input example has no rows, so its column types cannot be read.",
            hint="Pass a few rows of the training data, e.g. X.head().",
        )
    return frame


def _infer_column(name: str, series: pd.Series) -> ColumnSpec:
    import pandas as pd
    import pyarrow as pa

    nullable = bool(series.isna().any())
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories
        kind = _type_name(_to_arrow(name, pd.Series(categories, dtype=categories.dtype)).type)
        values = tuple(categories.tolist())
        if not all(isinstance(v, str | int | float | bool) for v in values):
            raise InvalidInput(
                f"Column {name!r} is categorical over {kind} values; only categories of "
                "strings, numbers or booleans can be recorded.",
                hint=f"Convert it, e.g. df[{name!r}] = df[{name!r}].astype(str).",
            )
        return ColumnSpec(name, kind, nullable, values)
    array = _to_arrow(name, series)
    if pa.types.is_null(array.type):
        raise InvalidInput(
            f"Column {name!r} of the input example holds only missing values, so its type "
            "cannot be read.",
            hint="Pass an example where every column has at least one value.",
        )
    return ColumnSpec(name, _type_name(array.type), nullable)


def _output_spec(value: Any) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa

    array = np.asarray(value)
    if array.dtype == object:
        kind = _type_name(_to_arrow("output", array.ravel()).type)
    else:
        kind = _type_name(pa.from_numpy_dtype(array.dtype))
    return {"type": kind, "shape": [-1, *array.shape[1:]] if array.ndim else []}


# --------------------------------------------------------------- validation


def _frame_from_columns(data: Mapping[Any, Any]) -> pd.DataFrame:
    import pandas as pd

    scalar = [
        k
        for k, v in data.items()
        if isinstance(v, str | bytes | Mapping) or not hasattr(v, "__len__")
    ]
    if scalar:
        raise InvalidInput(
            f"A dict of columns maps each column to a list of values; {scalar[:5]!r} map to "
            "single values.",
            hint="Wrap a single row in a list: [{...}], or give each column a list.",
        )
    lengths = {len(v) for v in data.values()}
    if len(lengths) > 1:
        raise InvalidInput(
            f"The columns have different lengths {sorted(lengths)}; every column needs one "
            "value per row.",
            hint="Give each column the same number of values.",
        )
    try:
        return pd.DataFrame(dict(data))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The columns cannot form a table: {exc}") from exc


def _frame_from_records(rows: Sequence[Any], names: list[str]) -> pd.DataFrame:
    import pandas as pd

    for number, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInput(
                f"A list of records holds one dict per row; row {number} is a "
                f"{type(row).__name__}.",
                hint='Send [{"column": value, ...}, ...].',
            )
        missing = [name for name in names if name not in row]
        if missing:
            raise InvalidInput(
                f"Row {number} lacks the column(s) {missing}; the model takes {names}.",
                hint="Give every record all the columns (null only where a column allows it).",
            )
    try:
        return pd.DataFrame.from_records(list(rows), columns=names) if rows else pd.DataFrame()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"The records cannot form a table: {exc}") from exc


def _frame_from_rows(rows: Any, width: int) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(rows, np.ndarray):
        fits = rows.ndim == 2 and rows.shape[1] == width
        got = f"an array of shape {rows.shape}"
    else:
        fits = all(len(row) == width for row in rows)
        got = f"rows of {sorted({len(row) for row in rows})} values"
    if not fits:
        raise InvalidInput(
            f"Each row must hold {width} values; got {got}.",
            hint=f"Send rows of exactly {width} values, in the order of the training columns.",
        )
    frame = pd.DataFrame(rows if isinstance(rows, np.ndarray) else list(rows))
    frame.columns = [str(i) for i in range(width)]
    return frame


def _conform(spec: ColumnSpec, series: pd.Series) -> pd.Series:
    """``series`` as ``spec`` says, or :class:`InvalidInput` naming what is wrong."""
    import pandas as pd
    import pyarrow as pa

    if spec.categories is not None:
        return _conform_categorical(spec, series)
    source = _to_arrow(spec.name, series, expected=spec.type)
    if source.null_count:
        _check_nulls(spec, series, source)
    if _type_name(source.type) == spec.type:
        return series
    target = _arrow_type(spec.type)
    if target is None or not _castable(source.type, target):
        raise InvalidInput(
            f"Column {spec.name!r} takes {spec.type} values; got {_type_name(source.type)}.",
            hint=_fix_hint(spec),
        )
    if pa.types.is_string(source.type) or pa.types.is_large_string(source.type):
        source = _parse_timestamps(spec, series)
    if pa.types.is_timestamp(source.type) and (source.type.tz is None) != (target.tz is None):
        have = "a time zone" if source.type.tz else "no time zone"
        raise InvalidInput(
            f"Column {spec.name!r} takes {spec.type} values; got timestamps with {have}.",
            hint=_fix_hint(spec),
        )
    try:
        cast = source.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(
            f"Column {spec.name!r} takes {spec.type} values; some values do not fit without "
            f"loss ({exc}).",
            hint=_fix_hint(spec),
        ) from exc
    masked = _masked_dtype(target) if spec.nullable else None
    values = (
        cast.to_pandas(types_mapper=lambda t: masked) if masked is not None else cast.to_pandas()
    )
    return pd.Series(values, index=series.index, name=spec.name)


def _conform_categorical(spec: ColumnSpec, series: pd.Series) -> pd.Series:
    import pandas as pd

    categories = list(spec.categories or ())
    present = series.dropna()
    try:
        unknown = set(present.unique()) - set(categories)
    except TypeError as exc:  # an unhashable value, such as a list
        raise InvalidInput(
            f"Column {spec.name!r} takes one of {categories[:20]}; got values that are not "
            f"single values ({exc}).",
            hint=_fix_hint(spec),
        ) from exc
    if unknown:
        shown = sorted(map(repr, unknown))[:_MAX_ROWS_SHOWN]
        raise InvalidInput(
            f"Column {spec.name!r} takes one of {categories[:20]}; got {', '.join(shown)}.",
            hint=_fix_hint(spec),
        )
    if not spec.nullable and len(present) != len(series):
        rows = series.index[series.isna().to_numpy()].tolist()[:_MAX_ROWS_SHOWN]
        raise InvalidInput(
            f"Column {spec.name!r} does not allow nulls; rows {rows} have none.",
            hint=_fix_hint(spec),
        )
    return pd.Series(
        pd.Categorical(series, categories=categories), index=series.index, name=spec.name
    )


def _check_nulls(spec: ColumnSpec, series: pd.Series, source: pa.Array) -> None:
    if spec.nullable:
        return
    mask = source.is_null().to_numpy(zero_copy_only=False)
    rows = series.index[mask].tolist()[:_MAX_ROWS_SHOWN]
    raise InvalidInput(
        f"Column {spec.name!r} does not allow nulls; {source.null_count} row(s) have one, "
        f"first at index {rows}.",
        hint=f"Send a {spec.type} value in every row of {spec.name!r}.",
    )


def _parse_timestamps(spec: ColumnSpec, series: pd.Series) -> pa.Array:
    import pandas as pd

    try:
        parsed = pd.to_datetime(series, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(
            f"Column {spec.name!r} takes {spec.type} values; some strings are not ISO 8601 "
            f"dates ({str(exc).splitlines()[0]}).",
            hint="Send times like '2024-05-01T12:30:00' (with '+00:00' when the column has "
            "a time zone).",
        ) from exc
    return _to_arrow(spec.name, parsed, expected=spec.type)


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether values of ``source`` may become ``target`` (each value is still checked)."""
    import pyarrow as pa

    types = pa.types
    if types.is_null(source):
        return True
    if types.is_integer(target):
        return types.is_integer(source) or types.is_floating(source)
    if types.is_floating(target):
        return types.is_integer(source) or types.is_floating(source)
    if types.is_timestamp(target):
        return (
            types.is_timestamp(source) or types.is_string(source) or types.is_large_string(source)
        )
    return False


def _masked_dtype(target: pa.DataType) -> Any:
    """pandas' nullable dtype for an integer or boolean column, so nulls survive the cast."""
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(target):
        return pd.api.types.pandas_dtype(str(target).replace("int", "Int").replace("uInt", "UInt"))
    if pa.types.is_boolean(target):
        return pd.BooleanDtype()
    return None


def _fix_hint(spec: ColumnSpec) -> str:
    kind = spec.type
    if spec.categories is not None:
        what = f"one of the categories {list(spec.categories)[:20]}"
    elif kind.startswith(("int", "uint")):
        what = "whole numbers (not strings or booleans)"
    elif kind in ("double", "float", "halffloat"):
        what = "numbers (not strings or booleans)"
    elif kind == "bool":
        what = "true or false (not 0/1 or strings)"
    elif kind == "string":
        what = "strings (quote numbers)"
    elif kind.startswith("timestamp"):
        what = "ISO 8601 times such as '2024-05-01T12:30:00'"
    else:
        what = f"{kind} values"
    nulls = "null is allowed" if spec.nullable else "null is not allowed"
    return f"Send {what} for {spec.name!r}; {nulls}."


# -------------------------------------------------------------------- arrow


def _to_arrow(name: str, values: Any, *, expected: str | None = None) -> pa.Array:
    """One Arrow array for a column, NaN read as null; mixed or odd values are an InvalidInput."""
    import pyarrow as pa

    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowException, OverflowError) as exc:
        wanted = f"{expected} values" if expected else "values of one type"
        raise InvalidInput(
            f"Column {name!r} should hold {wanted}; its values cannot be read as one type ({exc}).",
            hint="Send values of a single type in each column, with null for missing ones.",
        ) from exc


def _type_name(arrow_type: pa.DataType) -> str:
    """The type as written in a signature: dictionaries by value type, large_* as plain."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return _type_name(arrow_type.value_type)
    if pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_large_binary(arrow_type):
        return "binary"
    return str(arrow_type)


def _arrow_type(name: str) -> pa.DataType | None:
    import pyarrow as pa

    match = _TIMESTAMP.fullmatch(name)
    if match:
        return pa.timestamp(match.group(1), match.group(2))
    try:
        return pa.type_for_alias(name)
    except ValueError:
        return None


def _expect(value: Any, kind: type, field: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{field} must be a {kind.__name__}, got {type(value).__name__}")
    return value
