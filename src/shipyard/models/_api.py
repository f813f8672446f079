"""The model registry functions users call; each takes an optional ``client``.

Without one, the active run's client is used (so the version lands in the run's
store with lineage to it), else a Client built from the settings.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.models import _environment, _flavors, _uri
from shipyard.models._signature import Signature, infer_signature
from shipyard.store.entities import ModelFile, ModelVersion
from shipyard.tracking import Client, _validate, active_run

#: Rows of the input example kept with a version (for the model card and serving docs).
EXAMPLE_ROWS = 5
FORMATS = ("native", "onnx")


def _client_and_run(client: Client | None) -> tuple[Client, str | None]:
    run = active_run()
    if client is None:
        client = run.client if run is not None else Client()
    if run is not None and run.client._store_key() == client._store_key():
        return client, run.run_id
    return client, None


def log_model(
    model: Any,
    name: str,
    *,
    input_example: Any = None,
    signature: Signature | Mapping[str, Any] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    allow_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    client: Client | None = None,
) -> ModelVersion:
    """Register ``model`` as the next version of ``name``; return that version.

    Inside a run the version records the run and the dataset versions it read.
    The signature is inferred from ``input_example`` (and the model's output
    on it) unless given. scikit-learn models are saved with skops; a format
    that can run code when loaded is used only with ``allow_pickle=True``.
    ``trusted_types`` names extra classes skops may rebuild on load.
    """
    _uri.check_name(name)
    tags = _validate.text_mapping("tag", tags)
    flavor = _flavors.flavor_for(model)
    inferred = None if input_example is None else infer_signature(input_example, model)
    if signature is None:
        chosen = inferred
    elif isinstance(signature, Signature):
        chosen = signature
    elif isinstance(signature, Mapping):
        chosen = Signature.from_dict(signature)
    else:
        raise InvalidInput(
            f"signature must be a Signature or its dict; got {type(signature).__name__}."
        )
    client, run_id = _client_and_run(client)
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        saved = flavor.save(
            model, Path(tmp), allow_pickle=allow_pickle, trusted_types=tuple(trusted_types)
        )
        return client._register_model_version(
            name,
            saved.path,
            serialization=saved.serialization,
            meta=saved.meta,
            flavor=flavor.name,
            environment=_environment.capture(flavor.packages(model)),
            signature=None if chosen is None else chosen.to_dict(),
            input_example=None if input_example is None else _example_records(input_example),
            description=description,
            tags=tags,
            run_id=run_id,
        )


def store_model_file(
    client: Client, name: str, chunks: Iterable[bytes | bytearray | memoryview]
) -> tuple[str, int]:
    """Store a model file arriving in chunks (a server's upload); return its digest and size.

    If iterating ``chunks`` raises (a truncated upload, a digest that does not
    match), nothing is stored. Register it with :func:`register_stored_file`.
    """
    _uri.check_name(name)
    with client.blobs.writer() as sink:
        size = 0
        for chunk in chunks:
            size += sink.write(chunk)
        if size == 0:  # raised inside the writer: nothing is stored
            raise InvalidInput("The model file is empty.", hint="Send the file as the body.")
    assert sink.info is not None
    return sink.info.digest, sink.info.size


def register_stored_file(
    client: Client,
    name: str,
    *,
    flavor: str,
    serialization: str,
    digest: str,
    size: int,
    meta: Mapping[str, Any],
    environment: Mapping[str, Any],
    signature: Mapping[str, Any] | None,
    input_example: Sequence[Mapping[str, Any]] | None,
    description: str | None,
    tags: Mapping[str, str] | None,
    run_id: str | None,
) -> ModelVersion:
    """Register a stored file as the next version of ``name`` (what a remote log_model sends).

    The file is checked first: it must be stored, ``size`` bytes long, and hash to
    ``digest`` now; the flavor and signature must be ones Shipyard knows.
    """
    from shipyard.models._flavors import FLAVORS

    _uri.check_name(name)
    if flavor not in FLAVORS:
        raise InvalidInput(
            f"Unknown model flavor {flavor!r}.", hint=f"Known flavors: {', '.join(FLAVORS)}."
        )
    if serialization not in ("skops", "onnx", "pickle"):
        raise InvalidInput(
            f"Unknown serialization {serialization!r}; expected skops, onnx or pickle."
        )
    if not client.blobs.exists(digest):
        raise NotFound(
            "model file", digest, hint=f"Upload it first: POST /api/v1/models/{name}/files."
        )
    stored = client.blobs.size(digest)
    if stored != size:
        raise InvalidInput(f"The stored file {digest} has {stored:,} bytes, not {size:,}.")
    client.blobs.verify(digest)  # IntegrityError unless the stored bytes hash to the digest
    checked = None if signature is None else Signature.from_dict(signature).to_dict()
    native = ModelFile("native", serialization, digest, size, dict(meta))
    return client._record_model_version(
        name,
        flavor=flavor,
        native=native,
        environment=dict(environment),
        signature=checked,
        input_example=None if input_example is None else [dict(r) for r in input_example],
        description=description,
        tags=_validate.text_mapping("tag", tags),
        run_id=run_id,
    )


def _example_records(example: Any) -> list[dict[str, Any]]:
    """The first rows of an input example as JSON-able records."""
    import pandas as pd

    frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
    frame = frame.head(EXAMPLE_ROWS)
    frame.columns = [str(c) for c in frame.columns]
    # pandas' JSON writer turns numpy scalars, NaN and timestamps into JSON types.
    return json.loads(frame.to_json(orient="records", date_format="iso"))


# ------------------------------------------------------------------- reading


def resolve(uri: str, *, client: Client | None = None) -> ModelVersion:
    """The version a ``models:/`` URI names (an alias resolved now)."""
    _uri.parse(uri)  # a malformed URI is refused before any lookup
    client, _ = _client_and_run(client)
    return client.get_model_version(uri)


class LoadedModel:
    """A registered model ready to predict; inputs are checked against its signature.

    ``predict(data)`` takes a DataFrame, a dict of columns or a list of
    records. ``predict_proba`` exists when the model has it.
    """

    def __init__(self, model: Any, version: ModelVersion, file_format: str) -> None:
        self.model = model
        self.version = version
        self.format = file_format
        self.signature = (
            None if version.signature is None else Signature.from_dict(version.signature)
        )
        # Estimators fitted on bare arrays warn when given named columns.
        self._as_array = file_format == "native" and (
            version.flavor == "sklearn" and not hasattr(model, "feature_names_in_")
        )
        if hasattr(model, "predict_proba"):
            self.predict_proba = self._predict_proba

    def __repr__(self) -> str:
        return f"<LoadedModel {self.version.uri} ({self.version.flavor}, {self.format})>"

    @property
    def uri(self) -> str:
        return self.version.uri

    @property
    def classes_(self) -> Any:
        return self.model.classes_

    def _prepare(self, data: Any) -> Any:
        if self.signature is not None:
            data = self.signature.validate(data)
        return data.to_numpy() if self._as_array and hasattr(data, "to_numpy") else data

    def predict(self, data: Any) -> Any:
        return self.model.predict(self._prepare(data))

    def _predict_proba(self, data: Any) -> Any:
        return self.model.predict_proba(self._prepare(data))


def load_model(
    uri: str,
    *,
    format: str = "native",
    allow_pickle: bool = False,
    client: Client | None = None,
) -> LoadedModel:
    """Load ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (``@latest`` too).

    The blob is copied to a private file and verified against its registered
    digest before any byte of it is deserialised. ``format="onnx"`` runs the
    exported ONNX file with onnxruntime.
    """
    if format not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}; got {format!r}.")
    client, _ = _client_and_run(client)
    version = resolve(uri, client=client)
    file = version.files.get(format)
    if file is None:
        raise NotFound(
            "format",
            f"{version.uri} ({format})",
            hint=f"Create it with `shipyard models export {version.uri} --format {format}`.",
        )
    if file.serialization == "pickle" and not allow_pickle:
        raise PermissionDenied(
            f"{version.uri} is stored as a pickle, which can run code when loaded.",
            hint="Pass allow_pickle=True only if you trust whoever registered it.",
        )
    _environment.check(version.environment, label=version.uri)
    flavor = _flavors.get_flavor("onnx" if format == "onnx" else version.flavor)
    with tempfile.TemporaryDirectory(prefix="shipyard-load-") as tmp:
        path = Path(tmp) / "model"
        # Embedded: copied from the blob store; remote: streamed from the server. Either
        # way verified against the registered digest before a byte is deserialised.
        client._download_model_file(version, file, path)
        model = flavor.load(path, file.meta, allow_pickle=allow_pickle)
    return LoadedModel(model, version, format)


# ------------------------------------------------------------- aliases


def set_alias(name: str, alias: str, version: int, *, client: Client | None = None) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (audited with the previous version)."""
    client, _ = _client_and_run(client)
    client.set_alias(name, alias, version)


def delete_alias(name: str, alias: str, *, client: Client | None = None) -> None:
    """Remove ``alias`` from model ``name`` (audited with the version it pointed at)."""
    client, _ = _client_and_run(client)
    client.delete_alias(name, alias)
