"""The model registry functions users call; each takes an optional ``client``.

Without one, the active run's client is used (so the version lands in the run's
store with lineage to it), else a Client built from the settings.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, NotFound, PermissionDenied
from shipyard.models import _environment, _flavors, _uri
from shipyard.models._signature import Signature, infer_signature
from shipyard.store import models as models_repo
from shipyard.store.entities import ModelFile, ModelVersion
from shipyard.tracking import Client, _validate, active_run

#: Rows of the input example kept with a version (for the model card and serving docs).
EXAMPLE_ROWS = 5
FORMATS = ("native", "onnx")


def _client_and_run(client: Client | None) -> tuple[Client, str | None, int | None]:
    run = active_run()
    if client is None:
        client = run.client if run is not None else Client()
    if run is not None and run.client.store is client.store:
        return client, run.run_id, client._run_pk(run.run_id)
    return client, None, None


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
    client, run_id, run_pk = _client_and_run(client)
    with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
        saved = flavor.save(
            model, Path(tmp), allow_pickle=allow_pickle, trusted_types=tuple(trusted_types)
        )
        # Stored before the metadata: a failure after this leaves an unreferenced
        # blob (content-addressed, harmless), never a version without its bytes.
        info = client.blobs.put(saved.path)
    native = ModelFile("native", saved.serialization, info.digest, info.size, dict(saved.meta))
    with client.store.write(client.actor) as tx:
        return models_repo.register_version(
            tx,
            name,
            flavor=flavor.name,
            native=native,
            environment=_environment.capture(flavor.packages(model)),
            signature=None if chosen is None else chosen.to_dict(),
            input_example=None if input_example is None else _example_records(input_example),
            description=description,
            tags=tags,
            run_id=run_id,
            run_pk=run_pk,
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
    ref = _uri.parse(uri)
    client, _, _ = _client_and_run(client)
    with client.store.read() as conn:
        version = ref.version or models_repo.resolve_alias(conn, ref.name, ref.alias or "")
        return models_repo.get_version(conn, ref.name, version)


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
    client, _, _ = _client_and_run(client)
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
        client.blobs.download(file.digest, path)
        model = flavor.load(path, file.meta, allow_pickle=allow_pickle)
    return LoadedModel(model, version, format)


# ------------------------------------------------------------- aliases


def set_alias(name: str, alias: str, version: int, *, client: Client | None = None) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (audited with the previous version)."""
    client, _, _ = _client_and_run(client)
    client.set_alias(name, alias, version)


def delete_alias(name: str, alias: str, *, client: Client | None = None) -> None:
    """Remove ``alias`` from model ``name`` (audited with the version it pointed at)."""
    client, _, _ = _client_and_run(client)
    client.delete_alias(name, alias)
