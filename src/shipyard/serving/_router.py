"""What answers a request: a loaded version (:class:`Served`) and the :class:`Router` choosing it.

A :class:`Served` is immutable once built: the version, the model, and a fast
path for numeric rows. The router holds a :class:`Lineup` (the version that
answers, an optional canary with its share, an optional shadow) behind a
single reference; a request takes what it needs once (:meth:`Router.choose`,
:meth:`Router.shadows`) and keeps it to the end, so a swap never changes the
model under a request in flight.

Canary and shadow
-----------------
``choose`` draws once per request, not per row: the canary answers the whole
request with probability ``canary_percent / 100``, so over 10,000 requests at
10 % it answers 1,000 ± 60 (two standard deviations ≈ 0.6 %). A shadow
predicts on every request after the answer is made, off the request path (see
:class:`shipyard.serving._app.ShadowRunner`); it never changes a response.
Each prediction is logged with the version that made it and its role
(``primary``, ``canary`` or ``shadow``).

Runtimes
--------
``native`` runs the registered model as it was logged. ``onnx`` runs the
version's ``onnx`` file (made by ``shipyard models export``) with onnxruntime;
that file was stored only after it gave the same class labels as the original
on the version's input example, and other outputs within the tolerance
recorded in its meta (``checked``: ``|onnx - native| <= tol * max(1,
|native|)``, 1e-5 by default): probabilities and regression values computed in
float32 can differ in the sixth significant digit. ``auto`` takes ``onnx``
when the version has that file and ``native`` otherwise.

The fast path
-------------
For a signature of plain numeric columns (no categories), a request whose
values are all numbers its columns hold exactly goes to the model as numpy
arrays, without pandas: a JSON body (``{"columns", "data"}`` rows, records, or
a dict of columns) through one ``np.array`` call, an Arrow or Parquet body
whose columns already have the signature's types (no nulls, NaN or infinity)
straight from its buffers. The fast path never refuses anything: a request it
is unsure of (a null, a string, a bool, a float where an integer goes, an
integer beyond what its column holds exactly, NaN or infinity, a ragged row)
goes through :meth:`Signature.validate`, the one place that refuses input and
says why, so both paths accept and refuse exactly the same.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import operator
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

    from shipyard.models import LoadedModel
    from shipyard.store.deployments import Deployment
    from shipyard.store.entities import ModelVersion
    from shipyard.tracking import Client

RUNTIMES = ("auto", "native", "onnx")
#: JSON batches up to this many rows are checked value by value; larger ones through numpy.
_FEW_ROWS = 16
#: Values equal to 0 or 1 in a fast-path batch are checked one by one (a JSON true or false
#: becomes 1 or 0 in an array); past this many, every value's type is checked at once.
_BOOL_CHECKS = 1000


@dataclasses.dataclass(frozen=True)
class Table:
    """A column-oriented JSON body: ``columns`` names and ``data`` rows, each a list of one
    value per column (checked when it is made; see ``shipyard.serving._app``)."""

    columns: list[str]
    data: list[list[Any]]

    def __len__(self) -> int:
        return len(self.data)

    def records(self) -> list[dict[str, Any]]:
        """The rows as records, for :meth:`Signature.validate`."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.data]

    def positions(self, names: Sequence[str]) -> list[int]:
        """Where each of ``names`` is in a row; a KeyError for a name the body lacks."""
        where = {name: number for number, name in enumerate(self.columns)}
        return [where[name] for name in names]


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One request's answer: values per row, probabilities when the model has them.

    Numbers stay numpy arrays (a 1-D array of values, a 2-D float64 array of
    probabilities), which orjson writes without a Python object per value;
    other values (strings) are a list.
    """

    predictions: Any
    probabilities: Any


class Served:
    """One loaded model version, ready to answer."""

    def __init__(self, loaded: LoadedModel, runtime: str) -> None:
        import numpy as np

        self.loaded = loaded
        self.version: ModelVersion = loaded.version
        self.uri = loaded.version.uri
        self.runtime = runtime
        self.signature = loaded.signature
        self.columns: list[str] = [] if self.signature is None else self.signature.column_names
        self._model = loaded.model
        self._onnx = runtime == "onnx"
        self._has_proba = hasattr(loaded, "predict_proba")
        self._labels_from_proba = (
            not self._onnx and self._has_proba and _predict_is_argmax(self._model)
        )
        self._dtypes: list[Any] | None = None
        self._bounds: list[tuple[int, int]] = []
        self._as_array = self._onnx or getattr(loaded, "_as_array", False)
        if self.signature is not None and all(
            spec.categories is None and _numeric(spec.type) for spec in self.signature.inputs
        ):
            self._dtypes = [np.dtype(_numpy_type(spec.type)) for spec in self.signature.inputs]
            self._bounds = [_exact_ints(dtype) for dtype in self._dtypes]
        if self._onnx and len(getattr(self._model, "input_names", ())) != 1:
            self._as_array = False  # one input per column: fed through the frame

    def __repr__(self) -> str:
        return f"<Served {self.uri} ({self.runtime})>"

    # -------------------------------------------------------------- inputs

    def fast_columns(self, payload: Any) -> dict[str, np.ndarray] | None:
        """The payload's columns as numpy arrays (the values as sent, in signature order) when
        the fast path may take them, else None (see the module docstring)."""
        if self._dtypes is None:
            return None
        import numpy as np
        import pyarrow as pa

        if isinstance(payload, pa.Table):
            return self._arrow_columns(payload)
        if isinstance(payload, list | Table) and len(payload) <= _FEW_ROWS:
            return self._few_columns(payload)
        found = _json_values(payload, self.columns)
        if found is None:
            return None
        values = found.array  # a row per column
        if values.ndim != 2 or values.shape[0] != len(self.columns) or values.shape[1] == 0:
            return None
        if values.dtype.kind not in "if" or not _in_bounds(values, self._bounds):
            return None
        if _has_bools(found):
            return None
        columns = {}
        for number, (name, dtype) in enumerate(zip(self.columns, self._dtypes, strict=True)):
            column = values[number]
            if dtype.kind != "f" and column.dtype.kind == "f":
                # Floats elsewhere made every value a float: this column must have held ints.
                if set(map(type, found.column(number))) != {int}:
                    return None  # 30.0 or 30.5 where an integer goes: checked
                column = column.astype(np.int64)
            columns[name] = column
        return columns

    def _few_columns(self, payload: list[Any] | Table) -> dict[str, Any] | None:
        """:meth:`fast_columns` for a few JSON rows, value by value (no numpy call to pay for)."""
        try:
            if isinstance(payload, Table):
                rows = _pick(payload.data, payload.positions(self.columns))
            elif all(type(row) is dict for row in payload):
                rows = _pick(payload, self.columns)
            else:
                return None
        except KeyError:  # a column the body lacks: checked
            return None
        assert self._dtypes is not None
        for row in rows:
            for value, dtype, (low, high) in zip(row, self._dtypes, self._bounds, strict=True):
                kind = type(value)
                if kind is int:
                    if not low <= value <= high:
                        return None
                elif kind is not float or dtype.kind != "f" or not math.isfinite(value):
                    return None
        return dict(zip(self.columns, map(list, zip(*rows, strict=True)), strict=True))

    def _arrow_columns(self, table: Any) -> dict[str, np.ndarray] | None:
        """An Arrow table's columns when each has its signature type, no null, NaN or infinity."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        assert self.signature is not None
        names = table.column_names
        if len(set(names)) != len(names) or table.num_rows == 0:
            return None
        columns: dict[str, np.ndarray] = {}
        for spec in self.signature.inputs:
            if spec.name not in names:
                return None
            column = table.column(spec.name)
            if str(column.type) != spec.type or column.null_count:
                return None
            if pa.types.is_floating(column.type) and not pc.all(pc.is_finite(column)).as_py():
                return None
            columns[spec.name] = np.asarray(column)
        return columns

    def frame_from_columns(self, columns: Mapping[str, Any]) -> Any:
        """What the model is given for fast-path columns: an array, or a frame with names."""
        import numpy as np

        assert self._dtypes is not None
        if self._as_array and len(set(self._dtypes)) == 1:  # one call, not one per column
            stacked = np.array([columns[name] for name in self.columns], dtype=self._dtypes[0])
            return np.ascontiguousarray(stacked.T)
        arrays = [
            np.asarray(columns[name], dtype=dtype)
            for name, dtype in zip(self.columns, self._dtypes, strict=True)
        ]
        if self._as_array:
            return np.column_stack(arrays) if len(arrays) > 1 else arrays[0].reshape(-1, 1)
        import pandas as pd

        return pd.DataFrame(dict(zip(self.columns, arrays, strict=True)), copy=False)

    def validate(self, data: Any) -> tuple[Any, Any]:
        """``data`` (a frame, records, columns) checked against the signature: the checked
        frame, and what the model is given for it."""
        if self.signature is None:
            raise InvalidInput(
                f"{self.uri} has no signature, so requests cannot be checked.",
                hint="Log the model with input_example=... so serving knows its columns.",
            )
        frame = self.signature.validate(data)
        if len(frame) == 0:
            raise InvalidInput("The batch has no rows.", hint="Send at least one row.")
        if self._as_array:
            return frame, frame.to_numpy(dtype="float32" if self._onnx else None)
        return frame, frame

    # -------------------------------------------------------------- running

    def predict(self, model_input: Any) -> Prediction:
        """Run the model; a ValueError or TypeError from it on checked input is InvalidInput."""
        import numpy as np

        try:
            if self._onnx:
                labels, proba = self._run_onnx(model_input)
            elif self._labels_from_proba:  # one pass over the trees, not two
                proba = self._model.predict_proba(model_input)
                labels = self._model.classes_.take(np.argmax(proba, axis=1))
            else:
                labels = self._model.predict(model_input)
                proba = self._model.predict_proba(model_input) if self._has_proba else None
        except InvalidInput:
            raise
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise InvalidInput(
                f"{self.uri} refused the input: {type(exc).__name__}: {str(exc)[:500]}",
                hint="The values fit the signature but not the model (an infinity, say); "
                "send values like those it was trained on.",
            ) from exc
        values = np.asarray(labels)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values.ravel()
        if values.dtype.kind in "biuf" and values.ndim == 1:
            values = np.ascontiguousarray(values)
        else:
            values = values.tolist()
        return Prediction(
            values,
            None if proba is None else np.ascontiguousarray(proba, dtype=np.float64),
        )

    def _run_onnx(self, model_input: Any) -> tuple[Any, Any]:
        """Labels and probabilities from one onnxruntime call (the predictor would make two)."""
        predictor = self._model
        proba_name = predictor._proba_output
        if proba_name is None or not self._as_array:
            return predictor.predict(model_input), (
                predictor.predict_proba(model_input) if self._has_proba else None
            )
        import numpy as np

        feed = predictor._feed(model_input)
        labels, proba = predictor._session.run([predictor._label_output, proba_name], feed)
        if isinstance(proba, list):  # ZipMap
            return labels, predictor._predict_proba(model_input)
        return labels, np.asarray(proba)

    def warm_up(self) -> None:
        """Predict once on the input example, so the first request pays no lazy set-up."""
        example = self.version.input_example
        if example and self.signature is not None:
            self.predict(self.validate(example)[1])


@dataclasses.dataclass(frozen=True)
class _JsonValues:
    """A decoded JSON body's values for the signature's columns: ``array`` has a row per
    column; ``at(column, row)`` is the value there as decoded, ``column(number)`` a column's
    decoded values, ``cells()`` every decoded value."""

    array: np.ndarray
    at: Callable[[int, int], Any]
    column: Callable[[int], Iterable[Any]]
    cells: Callable[[], Iterable[Any]]


def _json_values(payload: Any, names: list[str]) -> _JsonValues | None:
    """The values of the columns ``names`` in a decoded JSON body, or None when numpy cannot
    make one rectangular array of them (a missing column, a row that is not a dict, rows of
    unequal length, a value that is a list)."""
    import numpy as np

    chain = itertools.chain.from_iterable
    try:
        if isinstance(payload, Table):
            positions = payload.positions(names)
            data = payload.data
            if len(positions) < len(payload.columns):  # other columns, of any type: left out
                values = np.array(_pick(data, positions))
            else:
                values = np.array(data)
                if values.ndim == 2 and positions != list(range(values.shape[1])):
                    values = values[:, positions]
            return _JsonValues(
                np.ascontiguousarray(values.T),
                lambda c, r: data[r][positions[c]],
                lambda c: map(operator.itemgetter(positions[c]), data),
                lambda: chain(data),
            )
        if isinstance(payload, list):
            if not payload or type(payload[0]) is not dict:
                return None
            rows = _pick(payload, names)
            return _JsonValues(
                np.ascontiguousarray(np.array(rows).T),
                lambda c, r: rows[r][c],
                lambda c: map(operator.itemgetter(c), rows),
                lambda: chain(rows),
            )
        if isinstance(payload, dict):
            lists = [payload[name] for name in names]
            if not all(type(values) is list for values in lists):
                return None
            return _JsonValues(
                np.array(lists), lambda c, r: lists[c][r], lists.__getitem__, lambda: chain(lists)
            )
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        return None
    return None


def _pick(rows: list[Any], keys: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The values at ``keys`` of each row, a tuple per row."""
    rows = list(map(operator.itemgetter(*keys), rows))
    return [(value,) for value in rows] if len(keys) == 1 else rows


def _in_bounds(values: np.ndarray, bounds: list[tuple[int, int]]) -> bool:
    """Whether every value is finite and one its column holds exactly (row ``i`` of
    ``values`` is column ``i``); in a float array, also one a float64 holds exactly, as an
    integer sent for an integer column was made a float there."""
    import numpy as np

    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            return False
        exact = _exact_ints(values.dtype)
        bounds = [(max(low, exact[0]), min(high, exact[1])) for low, high in bounds]
    lows, highs = values.min(axis=1).tolist(), values.max(axis=1).tolist()
    return all(
        low <= smallest and largest <= high
        for (low, high), smallest, largest in zip(bounds, lows, highs, strict=True)
    )


def _has_bools(found: _JsonValues) -> bool:
    """Whether a JSON true or false hides in the array (numpy makes them 1 and 0)."""
    import numpy as np

    values = found.array
    columns, rows = np.nonzero((values == 0) | (values == 1))
    if len(columns) <= _BOOL_CHECKS:
        return any(
            type(found.at(c, r)) is bool
            for c, r in zip(columns.tolist(), rows.tolist(), strict=True)
        )
    return bool in set(map(type, found.cells()))


def _exact_ints(dtype: Any) -> tuple[int, int]:
    """The integers a column of ``dtype`` holds exactly (a float: those of its mantissa)."""
    import numpy as np

    if dtype.kind == "f":
        limit = 2 ** (np.finfo(dtype).nmant + 1)
        return -limit, limit
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _numeric(kind: str) -> bool:
    return kind in ("double", "float", "int64", "int32", "int16", "int8") or kind.startswith("uint")


def _numpy_type(kind: str) -> str:
    return {"double": "float64", "float": "float32"}.get(kind, kind)


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise InvalidInput(
            f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}.",
            hint="auto serves the ONNX export when the version has one, else the native model.",
        )
    return runtime


def pick_runtime(version: ModelVersion, runtime: str) -> str:
    check_runtime(runtime)
    if runtime == "auto":
        return "onnx" if "onnx" in version.files else "native"
    return runtime


def load(uri: str, *, runtime: str, client: Client) -> Served:
    """Load the version ``uri`` names now, in ``runtime``, warmed up."""
    from shipyard.models import load_model, resolve

    version = resolve(uri, client=client)
    chosen = pick_runtime(version, runtime)
    loaded = load_model(version.uri, format=chosen, client=client)
    served = Served(loaded, chosen)
    served.warm_up()
    return served


@dataclasses.dataclass(frozen=True)
class Targets:
    """What a deployment serves, as model URIs (aliases not resolved)."""

    model: str
    canary: str | None = None
    canary_percent: float | None = None
    shadow: str | None = None

    @classmethod
    def of(cls, deployment: Deployment) -> Targets:
        return cls(
            deployment.model_uri,
            deployment.canary_uri,
            deployment.canary_percent,
            deployment.shadow_uri,
        )

    @property
    def uris(self) -> list[str]:
        return [u for u in (self.model, self.canary, self.shadow) if u is not None]

    @property
    def follows_aliases(self) -> bool:
        """Whether a URI names an alias, whose moves must be followed."""
        return any("@" in uri for uri in self.uris)


@dataclasses.dataclass(frozen=True)
class Lineup:
    """The loaded versions answering now: the primary, a canary taking ``canary_percent``
    of the requests, a shadow run on every request without answering."""

    primary: Served
    canary: Served | None = None
    canary_percent: float = 0.0
    shadow: Served | None = None

    def versions(self) -> list[str]:
        served = (self.primary, self.canary, self.shadow)
        return list(dict.fromkeys(s.uri for s in served if s is not None))


class Router:
    """Chooses the version that answers each request (see the module docstring).

    The lineup is swapped whole (:meth:`install`); :meth:`choose` reads it once.
    ``seed`` makes the canary draws repeatable (tests).
    """

    def __init__(self, seed: int | None = None) -> None:
        self._lineup: Lineup | None = None
        self._random = random.Random(seed)

    @property
    def ready(self) -> bool:
        return self._lineup is not None

    @property
    def lineup(self) -> Lineup | None:
        return self._lineup

    @property
    def current(self) -> Served | None:
        """The primary version (the one answering every request not drawn for the canary)."""
        lineup = self._lineup
        return None if lineup is None else lineup.primary

    def choose(self) -> tuple[Served, str] | tuple[None, None]:
        """The version answering one request and its role: ``primary`` or ``canary``."""
        lineup = self._lineup
        if lineup is None:
            return None, None
        if lineup.canary is not None and self._random.random() * 100 < lineup.canary_percent:
            return lineup.canary, "canary"
        return lineup.primary, "primary"

    def shadows(self) -> Sequence[Served]:
        lineup = self._lineup
        return () if lineup is None or lineup.shadow is None else (lineup.shadow,)

    def swap(self, served: Served) -> Served | None:
        """Make ``served`` the primary, keeping the canary and shadow; return the previous one."""
        lineup = self._lineup
        previous = self.install(
            Lineup(served) if lineup is None else dataclasses.replace(lineup, primary=served)
        )
        return None if previous is None else previous.primary

    def install(self, lineup: Lineup) -> Lineup | None:
        """Serve ``lineup`` from the next request on; return the previous one."""
        previous, self._lineup = self._lineup, lineup
        return previous

    def versions(self) -> list[str]:
        lineup = self._lineup
        return [] if lineup is None else lineup.versions()


def _predict_is_argmax(model: Any) -> bool:
    """Whether ``model.predict`` is, by scikit-learn's own code, the class of the largest
    ``predict_proba`` (single-output forests and trees), so one call gives both."""
    try:
        from sklearn.ensemble._forest import ForestClassifier
        from sklearn.tree import BaseDecisionTree, DecisionTreeClassifier
    except ImportError:
        return False
    if getattr(model, "n_outputs_", None) != 1:
        return False
    if isinstance(model, ForestClassifier):
        return type(model).predict is ForestClassifier.predict
    if isinstance(model, DecisionTreeClassifier):
        return type(model).predict is BaseDecisionTree.predict
    return False
