"""Flavors: how each kind of model is written to one file and read back safely.

A flavor knows one kind of model object (``sklearn``, ``onnx``, ``python``);
:func:`flavor_for` picks the first one in :data:`FLAVORS` order that matches.
Each imports its libraries (scikit-learn, skops, onnx, onnxruntime,
cloudpickle) only inside its methods, so importing this module stays cheap;
``matches`` looks at ``sys.modules`` first, since an object of a library's type
implies that library is imported already. A new flavor is one class with
``name``, ``matches``, ``save``, ``load`` and ``packages``, plus a line in
``_REGISTRY``.

Formats that cannot run code when read are the default, pickle the explicit
exception:

- **skops** for scikit-learn estimators and pipelines, XGBoost and LightGBM
  models through their scikit-learn API (both round-trip through skops with
  equal predictions: skops stores their ``Booster`` through the libraries' own
  ``__getstate__``, i.e. their native model buffer), and the state of a
  :class:`~shipyard.models.PythonModel`. skops rebuilds only the types it is
  told to trust. At save, each type skops does not trust by default is accepted
  when it is a class under :data:`TRUSTED_PREFIXES` or is named in the caller's
  ``trusted_types``; the accepted list is recorded in the file's meta and is
  exactly what load trusts, so a file carrying any other type is refused.
  Functions under those prefixes (``numpy.savetxt`` in a ``FunctionTransformer``)
  are not accepted by prefix: a function is called with data at predict time,
  and some of them write files; name them in ``trusted_types`` if you mean it.
  skops warns that some trusted types (``sklearn.tree._tree.Tree``) index
  memory without bounds checks, so a file crafted by a malicious registrant can
  crash the process at predict time: trust the registry's writers.
- **onnx** for an ``onnx.ModelProto``, run with onnxruntime by :class:`OnnxPredictor`.
- **pickle** (cloudpickle when installed) only when the caller passes
  ``allow_pickle=True`` and skops cannot store the object (or a PythonModel
  class cannot be re-imported by its path); reading one needs
  ``allow_pickle=True`` again.

An object of no known kind is refused, even with ``allow_pickle=True``: wrap it
in a :class:`~shipyard.models.PythonModel`.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import sys
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shipyard._files import atomic_write
from shipyard.errors import IntegrityError, InvalidInput, PermissionDenied
from shipyard.models._environment import distributions_of
from shipyard.models._python_model import PythonModel

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "FLAVORS",
    "TRUSTED_NAMES",
    "TRUSTED_PREFIXES",
    "Flavor",
    "OnnxPredictor",
    "SavedModel",
    "flavor_for",
    "get_flavor",
]

#: Modules whose classes a skops file may hold without the caller naming them.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "xgboost.", "lightgbm.")
#: Standard containers skops leaves untrusted in some positions (LightGBM's params).
TRUSTED_NAMES = frozenset(
    {
        "builtins.bytearray",
        "builtins.frozenset",
        "builtins.set",
        "builtins.slice",
        "collections.Counter",
        "collections.OrderedDict",
        "collections.defaultdict",
    }
)

_PICKLE_HINT = "Pass allow_pickle=True only if you trust whoever registered it."


@dataclasses.dataclass(frozen=True)
class SavedModel:
    """What a flavor wrote: one file, its serialization, and what load needs besides."""

    path: Path
    serialization: str  # "skops" | "onnx" | "pickle"
    meta: dict[str, Any]  # JSON-able


class Flavor(Protocol):
    """One kind of model object, and how it is saved to a single file and loaded back."""

    name: str

    def matches(self, model: object) -> bool: ...

    def save(
        self,
        model: Any,
        directory: Path,
        *,
        allow_pickle: bool,
        trusted_types: Sequence[str] = (),
    ) -> SavedModel: ...

    def load(self, path: Path, meta: Mapping[str, Any], *, allow_pickle: bool) -> Any: ...

    def packages(self, model: object) -> list[str]: ...


# ------------------------------------------------------------------ sklearn


class SklearnFlavor:
    """scikit-learn estimators and pipelines, XGBoost and LightGBM through their sklearn API."""

    name = "sklearn"

    def matches(self, model: object) -> bool:
        if "sklearn" not in sys.modules:
            return False
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def save(
        self,
        model: Any,
        directory: Path,
        *,
        allow_pickle: bool,
        trusted_types: Sequence[str] = (),
    ) -> SavedModel:
        try:
            data, trusted = _skops_dumps(model, trusted_types, what=_type_name(model))
        except _SkopsUnsupported as exc:
            if not allow_pickle:
                raise InvalidInput(
                    f"skops cannot save this {_type_name(model)}: {exc.reason}.",
                    hint="Replace the part it names (a lambda, a local function) with an "
                    "importable one, or pass allow_pickle=True to store a pickle, which "
                    "runs code when loaded.",
                ) from exc.__cause__
            return _save_pickle(model, directory, {})
        path = Path(directory) / "model.skops"
        atomic_write(path, data)
        return SavedModel(path, "skops", {"serialization": "skops", "trusted_types": trusted})

    def load(self, path: Path, meta: Mapping[str, Any], *, allow_pickle: bool) -> Any:
        if meta.get("serialization") == "pickle":
            return _load_pickle(path, allow_pickle=allow_pickle)
        return _skops_load(path, meta)

    def packages(self, model: object) -> list[str]:
        modules = {"sklearn", "skops", "numpy", "scipy"}
        modules.update(type(part).__module__ for part in _estimators_in(model))
        return distributions_of(modules)


def _estimators_in(model: object) -> Iterator[object]:
    """``model`` and every estimator nested in its parameters (pipeline steps, ...)."""
    yield model
    get_params = getattr(model, "get_params", None)
    if get_params is None:
        return
    for value in get_params(deep=True).values():
        if hasattr(value, "get_params") and not isinstance(value, type):
            yield value


# --------------------------------------------------------------------- onnx


class OnnxFlavor:
    """An ``onnx.ModelProto``, stored as is and run with onnxruntime on the CPU."""

    name = "onnx"

    def matches(self, model: object) -> bool:
        cls = type(model)
        return cls.__name__ == "ModelProto" and cls.__module__.split(".")[0] == "onnx"

    def save(
        self,
        model: Any,
        directory: Path,
        *,
        allow_pickle: bool,
        trusted_types: Sequence[str] = (),
    ) -> SavedModel:
        import onnx

        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(
                f"The ONNX model is not valid: {exc}",
                hint="Fix the graph (onnx.checker.check_model says what is wrong) and log it again.",
            ) from exc
        path = Path(directory) / "model.onnx"
        atomic_write(path, model.SerializeToString())
        return SavedModel(path, "onnx", {"serialization": "onnx"})

    def load(self, path: Path, meta: Mapping[str, Any], *, allow_pickle: bool) -> OnnxPredictor:
        predictor = OnnxPredictor(path, classes=meta.get("classes"))
        # An export knows which output holds probabilities; for a classifier
        # without predict_proba (LinearSVC) the second output is decision scores.
        if "proba_output" in meta:
            predictor._proba_output = meta["proba_output"]
        return predictor

    def packages(self, model: object) -> list[str]:
        return distributions_of(["onnx", "onnxruntime", "numpy"])


#: ONNX tensor element types and the numpy dtype fed for them.
_ONNX_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}
_CLASS_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")


class OnnxPredictor:
    """Run an ONNX model with onnxruntime as if it were a scikit-learn estimator.

    ``session_or_path`` is an ``onnxruntime.InferenceSession``, an
    ``onnx.ModelProto``, the serialized bytes, or a path to a ``.onnx`` file.

    Inputs: a graph with one input gets the whole frame as a 2-D array of that
    input's element type; a graph with several inputs (skl2onnx with one input
    per column) gets each column of that name as an ``(n, 1)`` array.
    Outputs: the first is the prediction (a 1-D array for one value per row);
    a second one that is a float tensor or a sequence of maps (skl2onnx's
    ZipMap) holds the probabilities, returned as an ``(n, n_classes)`` float64
    array in class order. ``classes_`` comes from ``classes`` or from the
    graph's class labels (ZipMap or the classifier node), when either exists.
    """

    def __init__(self, session_or_path: Any, *, classes: Sequence[Any] | None = None) -> None:
        import numpy as np
        import onnxruntime as ort

        if isinstance(session_or_path, ort.InferenceSession):
            session, labels = session_or_path, None
        else:
            data = _onnx_bytes(session_or_path)
            labels = _onnx_class_labels(data)
            # onnxruntime's worker threads spin for a while after each run by default,
            # taking the CPU a server's event loop and its clients need on a small
            # machine: a 10,000-row batch took 93 ms spinning, 53 ms not, on 2 busy
            # cores (25 and 26 ms on quiet ones).
            options = ort.SessionOptions()
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime's errors share no base class but Exception
                raise IntegrityError(
                    f"onnxruntime cannot load this ONNX model: {type(exc).__name__}: {exc}"
                ) from exc
        self._session = session
        self._inputs = session.get_inputs()
        self.input_names = [item.name for item in self._inputs]
        outputs = session.get_outputs()
        self._label_output = outputs[0].name
        self._proba_output = next(
            (
                out.name
                for out in outputs[1:]
                if out.type.startswith("seq(map(")
                or out.type in ("tensor(float)", "tensor(double)")
            ),
            None,
        )
        chosen = classes if classes is not None else labels
        if chosen is not None:
            self.classes_ = np.asarray(list(chosen))

    def __repr__(self) -> str:
        return f"<OnnxPredictor inputs={self.input_names}>"

    def predict(self, data: Any) -> np.ndarray:
        """The first output, one value per row as a 1-D array."""
        import numpy as np

        result = np.asarray(self._run(self._label_output, data))
        return result.ravel() if result.ndim == 2 and result.shape[1] == 1 else result

    @property
    def predict_proba(self) -> Any:
        """Class probabilities, ``(n, n_classes)``; an AttributeError if the graph has none."""
        if self._proba_output is None:
            raise AttributeError(
                "This ONNX model has no probability output; it only predicts labels or values."
            )
        return self._predict_proba

    def _predict_proba(self, data: Any) -> np.ndarray:
        import numpy as np

        result = self._run(self._proba_output, data)
        if isinstance(result, list):  # ZipMap: one {class: probability} dict per row
            known = getattr(self, "classes_", None)
            keys = list(known) if known is not None else list(result[0]) if result else []
            return np.array([[row[key] for key in keys] for row in result], dtype=np.float64)
        return np.asarray(result, dtype=np.float64)

    def _run(self, output: str | None, data: Any) -> Any:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        feed = self._feed(data)
        try:
            return self._session.run([output], feed)[0]
        except (ort_state.InvalidArgument, ort_state.Fail, ort_state.RuntimeException) as exc:
            raise InvalidInput(
                f"The ONNX model refused the input: {exc}",
                hint=f"Give the columns {self.input_names} with the types the model was exported with.",
            ) from exc

    def _feed(self, data: Any) -> dict[str, Any]:
        import numpy as np

        if len(self._inputs) == 1:
            spec = self._inputs[0]
            values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            if values.ndim != 2:
                raise InvalidInput(
                    f"The ONNX model takes a 2-D table; got {values.ndim} dimension(s).",
                    hint="Pass a DataFrame or a 2-D array, one row per example.",
                )
            return {spec.name: _as_onnx_type(values, spec.type, spec.name)}
        columns = (
            set(data.columns)
            if hasattr(data, "columns")
            else set(data)
            if isinstance(data, Mapping)
            else set()
        )
        missing = [name for name in self.input_names if name not in columns]
        if missing:
            raise InvalidInput(
                f"The ONNX model takes one input per column {self.input_names}; missing {missing}.",
                hint="Pass a DataFrame (or a dict of columns) with those column names.",
            )
        return {
            spec.name: _as_onnx_type(
                np.asarray(data[spec.name]).reshape(-1, 1), spec.type, spec.name
            )
            for spec in self._inputs
        }


def _as_onnx_type(values: Any, onnx_type: str, name: str) -> Any:
    dtype = _ONNX_DTYPES.get(onnx_type)
    if dtype is None:
        raise InvalidInput(f"The ONNX input {name!r} has the unsupported type {onnx_type}.")
    try:
        return values.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"The ONNX input {name!r} takes {onnx_type}; the values given cannot be "
            f"converted ({exc}).",
            hint=f"Pass {dtype} values for {name!r}.",
        ) from exc


def _onnx_bytes(source: Any) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    if hasattr(source, "SerializeToString"):
        return source.SerializeToString()
    return Path(source).read_bytes()


def _onnx_class_labels(data: bytes) -> list[Any] | None:
    """Class labels written in the graph: ZipMap's first, else a classifier node's."""
    import onnx

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError lives in a module we do not import
        raise IntegrityError(f"This is not a readable ONNX model: {exc}") from exc
    nodes = sorted(model.graph.node, key=lambda node: node.op_type != "ZipMap")
    for node in nodes:
        for attribute in node.attribute:
            if attribute.name in _CLASS_LABEL_ATTRIBUTES:
                if attribute.strings:
                    return [label.decode("utf-8") for label in attribute.strings]
                return list(attribute.ints)
    return None


# ------------------------------------------------------------------- python


class PythonFlavor:
    """A :class:`PythonModel`: its class by import path, its state with skops."""

    name = "python"

    def matches(self, model: object) -> bool:
        return isinstance(model, PythonModel)

    def save(
        self,
        model: Any,
        directory: Path,
        *,
        allow_pickle: bool,
        trusted_types: Sequence[str] = (),
    ) -> SavedModel:
        cls = type(model)
        class_path = f"{cls.__module__}:{cls.__qualname__}"
        meta: dict[str, Any] = {"class": class_path}
        if not _importable(cls):
            if not allow_pickle:
                raise InvalidInput(
                    f"The PythonModel class {class_path} cannot be imported back by that "
                    "path (it lives in __main__ or inside a function), so loading could "
                    "not find it.",
                    hint="Define the class in an importable module, or pass "
                    "allow_pickle=True to store a pickle, which runs code when loaded.",
                )
            return _save_pickle(model, directory, meta)
        try:
            data, trusted = _skops_dumps(model.__getstate__(), trusted_types, what=class_path)
        except _SkopsUnsupported as exc:
            if not allow_pickle:
                raise InvalidInput(
                    f"skops cannot save the attributes of {class_path}: {exc.reason}.",
                    hint="Keep the attributes to numbers, strings, containers, numpy arrays "
                    "and scikit-learn objects, or pass allow_pickle=True to store a pickle, "
                    "which runs code when loaded.",
                ) from exc.__cause__
            return _save_pickle(model, directory, meta)
        path = Path(directory) / "model.skops"
        atomic_write(path, data)
        meta.update(serialization="skops", trusted_types=trusted)
        return SavedModel(path, "skops", meta)

    def load(self, path: Path, meta: Mapping[str, Any], *, allow_pickle: bool) -> Any:
        if meta.get("serialization") == "pickle":
            return _load_pickle(path, allow_pickle=allow_pickle)
        cls = _import_class(str(meta.get("class", "")))
        state = _skops_load(path, meta)
        model = cls.__new__(cls)
        if hasattr(model, "__setstate__"):
            model.__setstate__(state)
        elif state:
            model.__dict__.update(state)
        return model

    def packages(self, model: object) -> list[str]:
        modules = {type(model).__module__, "skops", "numpy"}
        for value in getattr(model, "__dict__", {}).values():
            modules.update(type(part).__module__ for part in _estimators_in(value))
        return distributions_of(modules)


def _importable(cls: type) -> bool:
    """Whether ``module:QualName`` finds this very class again, as a loading process would."""
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return False
    try:
        return _resolve(cls.__module__, cls.__qualname__) is cls
    except (ImportError, AttributeError):
        return False


def _import_class(class_path: str) -> type[PythonModel]:
    module, _, qualname = class_path.partition(":")
    try:
        cls = _resolve(module, qualname)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"The PythonModel class {class_path!r} this model was saved with cannot be "
            f"imported now ({type(exc).__name__}: {exc}).",
            hint="Install the package or put the module that defines it on sys.path.",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, PythonModel)):
        raise IntegrityError(
            f"{class_path!r} is not a PythonModel subclass; the model's record names the "
            "wrong class."
        )
    return cls


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# -------------------------------------------------------------------- skops


class _SkopsUnsupported(Exception):
    """skops cannot serialize the object at all (as opposed to: it holds untrusted types)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _skops_dumps(obj: Any, trusted_types: Sequence[str], *, what: str) -> tuple[bytes, list[str]]:
    """The skops bytes of ``obj`` and the types load must trust, or why it cannot be stored."""
    import skops.io as sio

    try:
        data = sio.dumps(obj)
    except Exception as exc:  # skops raises what the object's reduction raises: any type
        raise _SkopsUnsupported(f"{type(exc).__name__}: {exc}") from exc
    needed = sorted(sio.get_untrusted_types(data=data))
    # skops stores functions and classes by name; a lambda, a local or a __main__
    # one would be saved but could never be found again when loading.
    unloadable = [name for name in needed if "<" in name or name.startswith("__main__.")]
    if unloadable:
        raise _SkopsUnsupported(f"it refers to {unloadable}, which cannot be imported by name")
    caller = set(trusted_types)
    refused = [name for name in needed if name not in caller and not _trusted_by_default(name)]
    if refused:
        raise InvalidInput(
            f"The {what} holds types Shipyard does not trust by default: {refused}. "
            "A skops file rebuilds only types its reader trusts.",
            hint=f"If you trust them, pass trusted_types={refused!r}.",
        )
    return data, needed


def _trusted_by_default(name: str) -> bool:
    """A standard container, or a class (not a function) under :data:`TRUSTED_PREFIXES`."""
    if name in TRUSTED_NAMES:
        return True
    if not name.startswith(TRUSTED_PREFIXES):
        return False
    return isinstance(_loaded_object(name), type)


def _loaded_object(dotted: str) -> object:
    """The object a skops name such as ``sklearn.tree._tree.Tree`` denotes, if loaded already.

    Only ``sys.modules`` is consulted: the name comes from an object in memory,
    so its module is imported, and nothing is imported on a name's say-so.
    """
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        obj: object = module
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                break
        return obj
    return None


def _skops_load(path: Path, meta: Mapping[str, Any]) -> Any:
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    trusted = list(meta.get("trusted_types", ()))
    try:
        return sio.load(path, trusted=trusted)
    except UntrustedTypesFoundException as exc:
        extra = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
        raise IntegrityError(
            f"Refused to load {Path(path).name}: it holds types that were not trusted when "
            f"it was saved: {extra}. The file does not match its record.",
            hint="Register the model again from a trusted source.",
        ) from exc
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"{Path(path).name} is not a readable skops file: {exc}") from exc


# ------------------------------------------------------------------- pickle


def _save_pickle(model: Any, directory: Path, meta: dict[str, Any]) -> SavedModel:
    """Pickle ``model``, by value for classes in ``__main__`` or functions when cloudpickle is there."""
    try:
        import cloudpickle
    except ImportError:
        dumps, pickler = pickle.dumps, "pickle"
    else:
        dumps, pickler = cloudpickle.dumps, "cloudpickle"
    try:
        data = dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"This {_type_name(model)} cannot be pickled either: {exc}",
            hint="Remove what cannot be pickled (open files, locks, connections) from it.",
        ) from exc
    path = Path(directory) / "model.pkl"
    atomic_write(path, data)
    return SavedModel(path, "pickle", {**meta, "serialization": "pickle", "pickler": pickler})


def _load_pickle(path: Path, *, allow_pickle: bool) -> Any:
    if not allow_pickle:
        raise PermissionDenied(
            "This model is stored as a pickle, which can run code when loaded.",
            hint=_PICKLE_HINT,
        )
    with open(path, "rb") as fh:
        return pickle.load(fh)  # the caller opted in with allow_pickle=True


# ----------------------------------------------------------------- registry

_REGISTRY: dict[str, Flavor] = {
    flavor.name: flavor for flavor in (OnnxFlavor(), PythonFlavor(), SklearnFlavor())
}
#: Flavor names, in the order :func:`flavor_for` tries them.
FLAVORS = tuple(_REGISTRY)


def flavor_for(model: object) -> Flavor:
    """The first flavor in :data:`FLAVORS` that saves ``model``."""
    for flavor in _REGISTRY.values():
        if flavor.matches(model):
            return flavor
    raise InvalidInput(
        f"No known flavor saves a {_type_name(model)} object.",
        hint="Log a scikit-learn estimator or Pipeline (XGBoost and LightGBM through their "
        "scikit-learn API), an onnx.ModelProto, or an instance of a shipyard.PythonModel "
        "subclass that wraps your model.",
    )


def get_flavor(name: str) -> Flavor:
    """The flavor registered as ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown model flavor {name!r}; known: {', '.join(FLAVORS)}.",
            hint="The model was saved by a newer Shipyard, or its record is damaged.",
        ) from None


def _type_name(obj: object) -> str:
    cls = type(obj)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
