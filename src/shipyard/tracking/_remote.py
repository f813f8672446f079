"""The same Client API, served by a Shipyard server over HTTP.

``Client()`` returns a :class:`RemoteClient` when the resolved URI is
``http(s)://HOST[:PORT]`` (``SHIPYARD_URI``); ``SHIPYARD_TOKEN`` is sent as a
bearer token. Every public method is a request to the REST API under
``/api/v1``; the server's JSON errors ``{"error": {"code", "message", "hint"}}``
come back as the same :mod:`shipyard.errors` classes the embedded client
raises, and a server that cannot be reached is :class:`StoreUnavailable`.

Files travel as streams in 1 MiB chunks: an upload declares its Content-Length
and sha256 (``X-Shipyard-Digest``) before the first byte, so the server stores
nothing that does not match; a download goes to a temporary file, is checked
against its length and registered digest, and only then renamed into place.

What has no route (schema upgrades, checking a token, acting for another
user, ``store`` and ``blobs`` themselves) raises :class:`ConfigError` saying
it needs direct store access: nothing silently falls back to a local store.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import os
import tempfile
import threading
import urllib.parse
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx

from shipyard import _files, errors
from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.errors import (
    ConfigError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ShipyardError,
    StoreUnavailable,
)
from shipyard.store.entities import (
    Artifact,
    AuditEvent,
    Dataset,
    DatasetVersion,
    Experiment,
    Metric,
    ModelFile,
    ModelVersion,
    RegisteredModel,
    Run,
    RunPage,
    RunStatus,
    Token,
    User,
)
from shipyard.tracking import _validate
from shipyard.tracking._client import (
    MAX_RESULTS_LIMIT,
    Client,
    MetricLike,
    _collect_files,
    _status,
    is_server_uri,
)
from shipyard.tracking._remote_alerts import RemoteAlertsMixin
from shipyard.tracking._remote_deployments import RemoteDeploymentsMixin
from shipyard.tracking._remote_monitors import RemoteMonitorsMixin

if TYPE_CHECKING:
    from shipyard.blobs import BlobStore
    from shipyard.data._diff import DatasetDiff
    from shipyard.governance.audit import AuditReport
    from shipyard.governance.lineage import Lineage
    from shipyard.store import Store
    from shipyard.store import metrics as metrics_repo

__all__ = ["API_PATH", "DIGEST_HEADER", "RemoteClient"]

API_PATH = "/api/v1"
#: The sha256 of a transferred body, as ``sha256:<hex>`` (the server uses the same header).
DIGEST_HEADER = "X-Shipyard-Digest"
#: A contract sent with a dataset upload: zlib-deflated YAML, base64url (the server's limit).
CONTRACT_HEADER = "X-Shipyard-Contract"
MAX_CONTRACT_HEADER = 64 << 10
CHUNK_SIZE = 1 << 20
#: The server's page and batch limits (see ``shipyard.server._schemas``).
PAGE_SIZE = 1000
METRICS_PER_REQUEST = 10_000
#: Seconds to connect; to wait for any one read or write (a big upload is many writes).
TIMEOUT = httpx.Timeout(300.0, connect=10.0, pool=60.0)


class RemoteClient(RemoteDeploymentsMixin, RemoteMonitorsMixin, RemoteAlertsMixin, Client):
    """A :class:`Client` whose store is a Shipyard server; build it as ``Client(uri)``.

    One keep-alive connection pool per client, safe to share between threads.
    Writes are audited under the token's user (or the server's own actor when
    it runs without ``--auth``), not under the ``actor`` setting.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        artifacts: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings.load(uri=uri, artifacts=artifacts)
        self.url = _server_url(self.settings.uri)
        self._http = _pool(self.url, self.settings.token)
        # The fluent API keys buffered points by an integer per run: local stand-ins here.
        self._lock = threading.Lock()
        self._pk_counter = itertools.count(1)
        self._run_pks: dict[str, int] = {}
        self._pk_runs: dict[int, str] = {}
        self._run_experiments: dict[str, str] = {}
        self._experiment_ids: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RemoteClient(url={self.url!r})"

    def close(self) -> None:
        """Close the connection pool (shared by every client of this server and token);
        those clients cannot be used afterwards."""
        with _POOLS_LOCK:
            if _POOLS.get((self.url, self.settings.token)) is self._http:
                del _POOLS[(self.url, self.settings.token)]
        self._http.close()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    def _store_key(self) -> object:
        return ("server", self.url)

    # --------------------------------------------------- what needs the store itself

    def _needs_store(self, what: str) -> NoReturn:
        raise ConfigError(
            f"{what} needs direct store access; SHIPYARD_URI {self.url} names a Shipyard "
            "server, which does not offer it over HTTP.",
            hint="Run it on the server's machine with SHIPYARD_URI set to the server's own "
            "store (sqlite:///... or postgresql+psycopg://...).",
        )

    @property
    def store(self) -> Store:  # type: ignore[override]
        self._needs_store("Direct metadata store access (client.store)")

    @property
    def blobs(self) -> BlobStore:
        self._needs_store("Direct blob store access (client.blobs)")

    def as_actor(self, actor: str) -> Client:
        self._needs_store("Acting for another user (as_actor)")

    def upgrade_db(self) -> bool:
        self._needs_store("Migrating the schema (upgrade_db, `shipyard db upgrade`)")

    def authenticate(self, token: str) -> User | None:
        self._needs_store("Checking tokens (authenticate)")

    # ------------------------------------------------------------------ users, tokens
    # Admin-only routes: with a token of a lower role each call is PermissionDenied.

    def create_user(self, name: str, role: str) -> User:
        from shipyard.governance import _users

        body = {"name": _users.user_name(name), "role": _users.role(role)}
        return User(**self._call("POST", "/users", json=body))

    def get_user(self, name: str) -> User:
        from shipyard.governance import _users

        return User(**self._call("GET", self._q("users", _users.user_name(name))))

    def list_users(self) -> list[User]:
        return [User(**u) for u in self._items("/users")]

    def set_user_role(self, name: str, role: str) -> User:
        from shipyard.governance import _users

        path = self._q("users", _users.user_name(name))
        return User(**self._call("PATCH", path, json={"role": _users.role(role)}))

    def disable_user(self, name: str, disabled: bool = True) -> User:
        from shipyard.governance import _users

        path = self._q("users", _users.user_name(name))
        return User(**self._call("PATCH", path, json={"disabled": bool(disabled)}))

    def create_token(
        self, user: str, name: str | None = None, *, expires_days: int | None = None
    ) -> tuple[Token, str]:
        from shipyard.governance import _users

        body = {
            "user": _users.user_name(user),
            "name": _users.token_label(name),
            "expires_days": _users.expires_days(expires_days),
        }
        answer = self._call("POST", "/tokens", json=body)
        return Token(**answer["token"]), answer["secret"]

    def list_tokens(self, user: str | None = None) -> list[Token]:
        from shipyard.governance import _users

        params = {} if user is None else {"user": _users.user_name(user)}
        return [Token(**t) for t in self._items("/tokens", params)]

    def revoke_token(self, token_id: str) -> Token:
        from shipyard.governance import _users

        path = self._q("tokens", _users.token_id(token_id), "revoke")
        return Token(**self._call("POST", path))

    # ------------------------------------------------------------------ HTTP plumbing

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One request; the JSON answer, or the Shipyard error the server's answer names."""
        try:
            response = self._http.request(
                method, path, json=json, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.is_error:
            raise _error_from(response, token_sent=bool(self.settings.token))
        if not response.content:
            return None
        return response.json()

    def _unreachable(self, exc: httpx.TransportError) -> StoreUnavailable:
        if isinstance(exc, httpx.TimeoutException):
            reason = f"it did not answer in time ({type(exc).__name__})"
        else:
            reason = str(exc) or type(exc).__name__
        return StoreUnavailable(
            f"Cannot reach the Shipyard server at {self.url}: {reason}.",
            hint="Check that `shipyard server` runs there and that SHIPYARD_URI names it.",
        )

    def _items(
        self, path: str, params: Mapping[str, Any] | None = None, *, limit: int | None = None
    ) -> list[Any]:
        """Every item of a paged list (or the first ``limit``), a page of 1,000 at a time."""
        query = {**(params or {}), "max_results": PAGE_SIZE}
        items: list[Any] = []
        while True:
            page = self._call("GET", path, params=query)
            items.extend(page["items"])
            token = page.get("next_page_token")
            if token is None or (limit is not None and len(items) >= limit):
                return items
            query["page_token"] = token

    def _upload(
        self,
        method: str,
        path: str,
        file: Path,
        *,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send a file as the raw body, streamed, with its length and sha256 declared first."""
        digest, size = _hash_file(file)
        headers = {
            **(headers or {}),
            "Content-Type": content_type,
            "Content-Length": str(size),
            DIGEST_HEADER: digest,
        }
        return self._call(method, path, params=params, content=_chunks(file), headers=headers)

    def _download(self, path: str, dest: Path, digest: str) -> None:
        """Stream ``path`` into ``dest`` atomically, checked against its length and ``digest``.

        A short, long or mismatching body raises IntegrityError and leaves ``dest``
        as it was (not created if it did not exist).
        """
        receiving = False
        try:
            with self._http.stream("GET", path) as response:
                if response.is_error:
                    response.read()
                    raise _error_from(response, token_sent=bool(self.settings.token))
                receiving = True
                declared = response.headers.get("content-length")
                sent = response.headers.get(DIGEST_HEADER)
                if sent is not None and sent.strip().lower() != digest:
                    raise IntegrityError(
                        f"The server sends {sent} for {path}, but its registered digest is "
                        f"{digest}; nothing was written.",
                    )
                with _files.atomic_open(dest) as out:
                    sha = hashlib.sha256()
                    size = 0
                    for chunk in response.iter_raw(CHUNK_SIZE):
                        sha.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                    if declared is not None and size != int(declared):
                        raise _truncated(path, f"{size:,} of {int(declared):,} bytes arrived")
                    actual = f"sha256:{sha.hexdigest()}"
                    if actual != digest:
                        raise IntegrityError(
                            f"The download of {path} hashes to {actual}, not to its registered "
                            f"digest {digest}; nothing was written.",
                            hint="Try again; if it keeps failing the stored blob is corrupt "
                            "(`shipyard audit verify` on the server).",
                        )
        except httpx.TransportError as exc:
            if receiving:
                raise _truncated(path, str(exc) or type(exc).__name__) from exc
            raise self._unreachable(exc) from exc

    def _q(self, *parts: object) -> str:
        """A path of quoted segments: ``_q("runs", run_id)`` -> ``/runs/<id>``."""
        return "".join("/" + urllib.parse.quote(str(p), safe="") for p in parts)

    # -------------------------------------------------------------------- experiments

    def create_experiment(self, name: str, description: str | None = None) -> Experiment:
        _validate.name("experiment", name)
        body = {"name": name, "description": description}
        return _experiment(self._call("POST", "/experiments", json=body))

    def get_experiment(self, name_or_id: str) -> Experiment:
        return _experiment(self._call("GET", self._q("experiments", name_or_id)))

    def list_experiments(self) -> list[Experiment]:
        return [_experiment(e) for e in self._items("/experiments")]

    # --------------------------------------------------------------------------- runs

    def _start_run(
        self,
        experiment: str | None,
        name: str | None,
        tags: Mapping[str, Any] | None,
        parent_run_id: str | None,
        *,
        heartbeat: bool,
        experiment_id: str | None = None,
    ) -> Run:
        body = {
            "experiment": _validate.name("experiment", experiment_id or experiment or "Default"),
            "name": None if name is None else _validate.name("run", name),
            "tags": _validate.text_mapping("tag", tags),
            "parent_run_id": parent_run_id,
            "heartbeat": heartbeat,
        }
        run = _run(self._call("POST", "/runs", json=body))
        self._run_experiments[run.run_id] = run.experiment_id
        self._run_pk(run.run_id)
        return run

    def _run_pk(self, run_id: str) -> int:
        """A local number standing for the run in buffered metric points (no request)."""
        if not isinstance(run_id, str):
            raise InvalidInput(f"A run id is a string; got {type(run_id).__name__}.")
        with self._lock:
            pk = self._run_pks.get(run_id)
            if pk is None:
                pk = self._run_pks[run_id] = next(self._pk_counter)
                self._pk_runs[pk] = run_id
            return pk

    def get_run(self, run_id: str) -> Run:
        if not isinstance(run_id, str):
            raise InvalidInput(f"A run id is a string; got {type(run_id).__name__}.")
        return _run(self._call("GET", self._q("runs", run_id)))

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        self._end_run(run_id, _status(status), points=())

    def _end_run(
        self, run_id: str, status: RunStatus, points: Sequence[metrics_repo.Point]
    ) -> None:
        """End a run; its still-buffered points go in the same request (so in one transaction)."""
        by_run = self._group(points)
        own = by_run.pop(run_id, [])
        for other, its_points in by_run.items():
            self._post_points(other, its_points)
        while len(own) > METRICS_PER_REQUEST:
            self._post_points(run_id, own[:METRICS_PER_REQUEST])
            own = own[METRICS_PER_REQUEST:]
        body = {"status": RunStatus(status).value, "metrics": own}
        self._call("POST", self._q("runs", run_id, "end"), json=body)

    def _heartbeat(self, run_ids: Iterable[str]) -> None:
        for run_id in run_ids:
            self._call("POST", self._q("runs", run_id, "heartbeat"))

    # ------------------------------------------------------------ params, metrics, tags

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[MetricLike] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metrics, params and tags of one run in one request (one transaction)."""
        if not isinstance(run_id, str):
            raise InvalidInput(f"A run id is a string; got {type(run_id).__name__}.")
        points = [_point_json(p) for p in self._points(0, metrics)]
        body = {
            "metrics": points[:METRICS_PER_REQUEST],
            "params": _validate.text_mapping("param", params),
            "tags": _validate.text_mapping("tag", tags),
        }
        self._call("POST", self._q("runs", run_id, "batch"), json=body)
        for start in range(METRICS_PER_REQUEST, len(points), METRICS_PER_REQUEST):
            body = {"metrics": points[start : start + METRICS_PER_REQUEST]}
            self._call("POST", self._q("runs", run_id, "batch"), json=body)

    def _group(self, points: Sequence[metrics_repo.Point]) -> dict[str, list[dict[str, Any]]]:
        by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for point in points:
            by_run[self._pk_runs[point[0]]].append(_point_json(point))
        return by_run

    def _post_points(self, run_id: str, points: list[dict[str, Any]]) -> None:
        for start in range(0, len(points), METRICS_PER_REQUEST):
            body = {"metrics": points[start : start + METRICS_PER_REQUEST]}
            self._call("POST", self._q("runs", run_id, "batch"), json=body)

    def _append_points(self, points: Sequence[metrics_repo.Point]) -> None:
        for run_id, its_points in self._group(points).items():
            self._post_points(run_id, its_points)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        key = _validate.key("metric", key)
        path = self._q("runs", run_id, "metric-history")
        return [_metric(m) for m in self._items(path, {"key": key})]

    # -------------------------------------------------------------------------- search

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not (1 <= max_results <= MAX_RESULTS_LIMIT)
        ):
            raise InvalidInput(
                f"max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}; got {max_results!r}."
            )
        if isinstance(order_by, str):
            order_by = [order_by]
        experiments = None
        if experiment is not None:
            names = [experiment] if isinstance(experiment, str) else list(experiment)
            experiments = [str(e) for e in names]
        runs: list[Run] = []
        token = page_token
        while True:  # the server pages by 1,000 at most; a bigger page takes several
            body = {
                "experiments": experiments,
                "filter": filter,
                "order_by": None if order_by is None else list(order_by),
                "max_results": min(max_results - len(runs), PAGE_SIZE),
                "page_token": token,
            }
            found = self._call("POST", "/runs/search", json=body)
            runs.extend(_run(r) for r in found["items"])
            token = found["next_page_token"]
            if token is None or len(runs) >= max_results:
                return RunPage(runs, token)

    # ----------------------------------------------------------------------- artifacts

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], name: str | None = None
    ) -> list[Artifact]:
        source = Path(local_path)
        if not source.exists():
            raise NotFound("file", str(source), hint="Check the path passed to log_artifact.")
        base = _files.safe_relative_path(name if name is not None else source.name)
        files = _collect_files(source)
        self.get_run(run_id)  # an unknown run is refused before any byte is sent
        stored = []
        for relative, path in files:
            logical = str(base / relative) if relative else str(base)
            answer = self._upload("PUT", self._artifact_path(run_id, logical), path)
            stored.append(_artifact(answer))
        return stored

    def _artifact_path(self, run_id: str, logical: str) -> str:
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in logical.split("/"))
        return f"{self._q('runs', run_id, 'artifacts')}/{quoted}"

    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]:
        prefix = str(_files.safe_relative_path(path)) if path else ""
        found = self._items(self._q("runs", run_id, "artifacts"), {"path": prefix})
        return [_artifact(a) for a in found]

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        logical = str(_files.safe_relative_path(path))
        for artifact in self.list_artifacts(run_id, logical):
            if artifact.path == logical:
                return artifact
        raise NotFound("artifact", f"{run_id}/{logical}")

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        found = self.list_artifacts(run_id, path)
        if not found:
            raise NotFound("artifact", f"{run_id}/{path}", hint="List them with list_artifacts().")
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        for artifact in found:
            target = _files.confine(root, artifact.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._download(self._artifact_path(run_id, artifact.path), target, artifact.digest)
        return _files.confine(root, path) if path else root

    def log_artifact_stream(
        self, run_id: str, name: str, chunks: Iterable[bytes | bytearray | memoryview]
    ) -> Artifact:
        """Send chunks as they come (chunked transfer); if iterating them raises, the
        upload is cut off and the server stores nothing."""
        logical = str(_files.safe_relative_path(name))
        self.get_run(run_id)
        body = (bytes(chunk) for chunk in chunks)
        headers = {"Content-Type": "application/octet-stream"}
        answer = self._call(
            "PUT", self._artifact_path(run_id, logical), content=body, headers=headers
        )
        return _artifact(answer)

    # --------------------------------------------------------------------------- audit

    def audit_events(
        self,
        object_type: str | None = None,
        object_id: str | None = None,
        limit: int | None = None,
        *,
        newest: bool = False,
    ) -> list[AuditEvent]:
        params = {"object_type": object_type, "object_id": object_id}
        params = {k: v for k, v in params.items() if v is not None}
        found = self._items("/audit/events", params, limit=None if newest else limit)
        if limit is not None:
            found = found[-limit:] if newest else found[:limit]
        return [AuditEvent(**e) for e in found]

    def verify_audit(self) -> AuditReport:
        from shipyard.governance.audit import AuditReport

        return AuditReport(**self._call("GET", "/audit/verify"))

    # ------------------------------------------------------------------ model registry

    def get_model(self, name: str) -> RegisteredModel:
        from shipyard.models import _uri

        return RegisteredModel(**self._call("GET", self._q("models", _uri.check_name(name))))

    def search_models(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
    ) -> list[RegisteredModel]:
        params: dict[str, Any] = {}
        if name is not None:
            params["name"] = name
        if alias is not None:
            params["alias"] = alias
        if tags:
            params["tag"] = [f"{k}={v}" for k, v in tags.items()]
        return [RegisteredModel(**m) for m in self._items("/models", params)]

    def get_model_version(self, uri_or_name: str, version: int | None = None) -> ModelVersion:
        from shipyard.models import _uri

        if version is None:
            ref = _uri.parse(uri_or_name)
            name, alias, number = ref.name, ref.alias, ref.version
        else:
            name, alias, number = _uri.check_name(uri_or_name), None, _uri.check_version(version)
        if number is not None:
            return _model_version(self._call("GET", self._q("models", name, "versions", number)))
        return _model_version(self._call("GET", self._q("models", name, "aliases", alias)))

    def model_versions(self, name: str) -> list[ModelVersion]:
        from shipyard.models import _uri

        path = self._q("models", _uri.check_name(name), "versions")
        return [_model_version(v) for v in self._items(path)]

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        from shipyard.models import _uri

        name, alias = _uri.check_name(name), _uri.check_alias(alias)
        body = {"version": _uri.check_version(version)}
        return self._call("PUT", self._q("models", name, "aliases", alias), json=body)["previous"]

    def delete_alias(self, name: str, alias: str) -> int:
        from shipyard.models import _uri

        name, alias = _uri.check_name(name), _uri.check_alias(alias)
        return self._call("DELETE", self._q("models", name, "aliases", alias))["previous"]

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        from shipyard.models import _uri

        return self._items(self._q("models", _uri.check_name(name), "alias-history"))

    def set_model_version_status(self, name: str, version: int, status: str) -> None:
        from shipyard.models import _uri
        from shipyard.store import models as models_repo

        if status not in models_repo.STATUSES:
            raise InvalidInput(
                f"A model version status is one of {', '.join(models_repo.STATUSES)}; got {status!r}."
            )
        path = self._q("models", _uri.check_name(name), "versions", _uri.check_version(version))
        self._call("PUT", f"{path}/status", json={"status": status})

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        from shipyard.models import _uri

        body = {"description": description, "tags": _validate.text_mapping("tag", tags)}
        path = self._q("models", _uri.check_name(name))
        return RegisteredModel(**self._call("PATCH", path, json=body))

    def _register_model_version(
        self, name: str, path: Path, *, serialization: str, meta: Mapping[str, Any], **fields: Any
    ) -> ModelVersion:
        """Upload the file (the server checks its length and digest), then register it."""
        stored = self._upload("POST", self._q("models", name, "files"), Path(path))
        body = {
            **fields,
            "tags": dict(fields.get("tags") or {}),
            "file": {
                "serialization": serialization,
                "digest": stored["digest"],
                "size": stored["size"],
                "meta": dict(meta),
            },
        }
        return _model_version(self._call("POST", self._q("models", name, "versions"), json=body))

    def _add_model_file(
        self,
        version: ModelVersion,
        data: bytes,
        *,
        format: str,
        serialization: str,
        meta: Mapping[str, Any],
    ) -> ModelVersion:
        """Upload the file (length and digest checked), then record it as the version's
        ``format`` file; the server checks it before recording it."""
        with tempfile.TemporaryDirectory(prefix="shipyard-upload-") as folder:
            path = Path(folder) / f"model.{format}"
            _files.atomic_write(path, data)
            stored = self._upload("POST", self._q("models", version.name, "files"), path)
        body = {
            "serialization": serialization,
            "digest": stored["digest"],
            "size": stored["size"],
            "meta": dict(meta),
        }
        route = self._q("models", version.name, "versions", version.version, "files", format)
        return _model_version(self._call("PUT", route, json=body))

    def _download_model_file(self, version: ModelVersion, file: ModelFile, dest: Path) -> None:
        path = self._q("models", version.name, "versions", version.version, "files", file.format)
        self._download(path, dest, file.digest)

    # ------------------------------------------------------------------------ datasets

    def list_datasets(self) -> list[Dataset]:
        return [Dataset(**d) for d in self._items("/datasets")]

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        if version is None:
            latest = self._call("GET", self._q("datasets", name))["latest_version"]
            if latest is None:
                raise NotFound("dataset version", f"{name}@latest")
            version = latest
        return _dataset_version(self._call("GET", self._q("datasets", name, "versions", version)))

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        # Lists carry no profiles: each version is fetched whole, as the embedded call returns.
        found = self._items(self._q("datasets", name, "versions"))
        return [self.get_dataset_version(name, v["version"]) for v in found]

    def dataset_contract(self, name: str) -> str:
        return self._call("GET", self._q("datasets", name, "contract"))["contract"]

    def set_dataset_contract(self, name: str, contract_yaml: str) -> int:
        body = {"contract": contract_yaml}
        answer = self._call("PUT", self._q("datasets", name, "contract"), json=body)
        return answer["contract_version"]

    def record_input(self, run_id: str, name: str, version: int) -> None:
        body = {"dataset": name, "version": version}
        self._call("POST", self._q("runs", run_id, "inputs"), json=body)

    def _dataset_bytes(self, found: DatasetVersion) -> bytes:
        with tempfile.TemporaryDirectory(prefix="shipyard-dataset-") as folder:
            target = Path(folder) / "data.parquet"
            path = self._q("datasets", found.name, "versions", found.version, "data")
            self._download(path, target, found.digest)
            return target.read_bytes()

    def _register_dataset(
        self,
        name: str,
        data: Any,
        *,
        run_id: str | None,
        description: str | None = None,
        contract: Any = None,
        strict: bool | None = None,
        progress: Any = None,
    ) -> DatasetVersion:
        """Send the data as one CSV or Parquet file, and a contract in a header; the server
        profiles, checks and stores it."""
        from shipyard.data import _register

        _register.check_name(name)
        headers = {}
        given = _register._contract_from(contract)  # a bad one is refused before any upload
        if given is not None:
            headers[CONTRACT_HEADER] = _contract_header(given.to_yaml())
        params: dict[str, Any] = {}
        if description is not None:
            params["description"] = description
        if strict is not None:
            params["strict"] = "true" if strict else "false"
        if run_id is not None:
            params["run_id"] = run_id
        with tempfile.TemporaryDirectory(prefix="shipyard-upload-") as folder:
            path, format = _as_upload_file(data, Path(folder))
            params["format"] = format
            answer = self._upload(
                "POST", self._q("datasets", name, "versions"), path, params=params, headers=headers
            )
        found = _dataset_version(answer)
        if progress is not None:
            progress(found.rows)
        return found

    def _diff_datasets(self, name: str, old: int, new: int) -> DatasetDiff:
        """Computed by the server, which holds both versions; only the result travels."""
        from shipyard.data._diff import ColumnChange, DatasetDiff

        found = self._call(
            "GET", self._q("datasets", name, "diff"), params={"old": old, "new": new}
        )
        return DatasetDiff(
            **{
                **found,
                "retyped_columns": {c: tuple(t) for c, t in found["retyped_columns"].items()},
                "columns": [ColumnChange(**c) for c in found["columns"]],
            }
        )

    def lineage(self, ref: str, *, depth: int = 25) -> Lineage:
        from shipyard.governance.lineage import Edge, Lineage, parse_node

        root = parse_node(ref)
        found = self._call("GET", "/lineage", params={"ref": root, "depth": depth})
        edges = [Edge(e["source"], e["target"], e["relation"]) for e in found["edges"]]
        return Lineage(found["root"], found["nodes"], edges)


# ---------------------------------------------------------------------------- helpers

#: One keep-alive connection pool per (server, token), shared by the clients built for it
#: (``Client()`` is built anew by many calls, as an embedded store is opened once per URI).
_POOLS: dict[tuple[str, str], httpx.Client] = {}
_POOLS_LOCK = threading.Lock()


def _pool(url: str, token: str) -> httpx.Client:
    with _POOLS_LOCK:
        pool = _POOLS.get((url, token))
        if pool is None or pool.is_closed:
            headers = {"User-Agent": f"shipyard/{__version__}", "Accept": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            pool = _POOLS[(url, token)] = httpx.Client(
                base_url=url + API_PATH, headers=headers, timeout=TIMEOUT, follow_redirects=False
            )
        return pool


def close_pools(url: str | None = None) -> None:
    """Close the connection pools to ``url`` (every server without one)."""
    with _POOLS_LOCK:
        keys = [key for key in _POOLS if url is None or key[0] == _server_url(url)]
        pools = [_POOLS.pop(key) for key in keys]
    for pool in pools:
        pool.close()


def _after_fork_in_child() -> None:
    # A child must not share the parent's sockets.
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _server_url(uri: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash or ``/api/v1``."""
    if not is_server_uri(uri):
        raise ConfigError(
            f"A RemoteClient needs an http(s):// URI; got {uri!r}.",
            hint="Set SHIPYARD_URI to the server, e.g. http://127.0.0.1:5000.",
        )
    parts = urllib.parse.urlsplit(uri)
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ConfigError(
            f"Bad server URI {uri!r}: expected http(s)://HOST[:PORT] with no user, query or "
            "fragment.",
            hint="Put the token in SHIPYARD_TOKEN, not in the URI.",
        )
    path = parts.path.rstrip("/")
    if path.endswith(API_PATH):
        path = path[: -len(API_PATH)]
    return urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))


def _contract_header(contract_yaml: str) -> str:
    """A contract as the server's ``X-Shipyard-Contract`` header takes it (see its route)."""
    value = base64.urlsafe_b64encode(zlib.compress(contract_yaml.encode("utf-8"), 9)).decode()
    if len(value) > MAX_CONTRACT_HEADER:
        raise InvalidInput(
            f"The contract is too big to send with a registration: {len(value):,} bytes "
            f"deflated and encoded, over the {MAX_CONTRACT_HEADER:,} a request header may hold.",
            hint="Store it first with set_dataset_contract(name, contract) (the dataset must "
            "exist), then register without contract=.",
        )
    return value


def _hash_file(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    for chunk in _chunks(path):
        sha.update(chunk)
        size += len(chunk)
    return f"sha256:{sha.hexdigest()}", size


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


def _truncated(path: str, detail: str) -> IntegrityError:
    return IntegrityError(
        f"The download of {path} was cut short ({detail}); nothing was written.",
        hint="Try again; if it keeps failing, check the stored blob on the server "
        "(a corrupt blob is cut short on purpose).",
    )


def _as_upload_file(data: Any, folder: Path) -> tuple[Path, str]:
    """A CSV or Parquet file holding ``data``: a single such file as it is, else Parquet."""
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        lowered = path.name.lower()
        if path.is_file() and lowered.endswith(".csv"):
            return path, "csv"
        if path.is_file() and lowered.endswith((".parquet", ".pq")):
            return path, "parquet"
    import pyarrow.parquet as pq

    from shipyard.data._ingest import open_source

    source = open_source(data)  # the same checks (and errors) as an embedded registration
    target = folder / "data.parquet"
    with pq.ParquetWriter(target, source.schema) as writer:
        for batch in source.batches:
            writer.write_batch(batch)
    return target, "parquet"


#: The error class for each code a server sends; anything else is a ShipyardError.
_CODES: dict[str, type[ShipyardError]] = {
    "not_found": errors.NotFound,
    "already_exists": errors.AlreadyExists,
    "conflict": errors.Conflict,
    "invalid_input": errors.InvalidInput,
    "unsafe_path": errors.UnsafePath,
    "payload_too_large": errors.InvalidInput,
    "integrity_error": errors.IntegrityError,
    "permission_denied": errors.PermissionDenied,
    "unauthenticated": errors.PermissionDenied,
    "store_unavailable": errors.StoreUnavailable,
    "config_error": errors.ConfigError,
}
_STATUSES: dict[int, type[ShipyardError]] = {
    400: errors.InvalidInput,
    401: errors.PermissionDenied,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.InvalidInput,
    422: errors.InvalidInput,
    503: errors.StoreUnavailable,
}


def _error_from(response: httpx.Response, *, token_sent: bool) -> ShipyardError:
    """The Shipyard error a server's error response stands for, with its message and hint."""
    try:
        detail = response.json()["error"]
        code, message, hint = detail["code"], detail["message"], detail.get("hint")
    except (ValueError, KeyError, TypeError):
        code, hint = None, None
        text = response.text.strip().replace("\n", " ")[:300]
        message = f"The server answered {response.status_code} {response.reason_phrase}: {text}"
    cls = _CODES.get(code or "") or _STATUSES.get(response.status_code, ShipyardError)
    if code == "contract_violation":
        from shipyard.data._register import ContractViolation

        cls = ContractViolation
    if response.status_code == 401 and not token_sent:
        hint = "This server needs a token: set SHIPYARD_TOKEN (an admin creates one with `shipyard tokens create USER`)."
    exc = cls.__new__(cls)
    ShipyardError.__init__(exc, message, hint=hint)
    # The fields the embedded errors carry; the answer does not tell them.
    if isinstance(exc, errors.NotFound | errors.AlreadyExists):
        exc.kind, exc.key = None, None
    if isinstance(exc, errors.UnsafePath):
        exc.path, exc.reason = None, None
    if code == "contract_violation":
        exc.report = None  # type: ignore[attr-defined]
    return exc


def _float(value: float | str) -> float:
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[value]
    return float(value)


def _json_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _point_json(point: metrics_repo.Point) -> dict[str, Any]:
    _pk, key, value, step, timestamp = point
    return {"key": key, "value": _json_float(value), "step": step, "timestamp": timestamp}


def _experiment(d: Mapping[str, Any]) -> Experiment:
    return Experiment(d["experiment_id"], d["name"], d["description"], d["created_at"])


def _metric(d: Mapping[str, Any]) -> Metric:
    return Metric(d["key"], _float(d["value"]), d["step"], d["timestamp"])


def _run(d: Mapping[str, Any]) -> Run:
    return Run(
        run_id=d["run_id"],
        experiment_id=d["experiment_id"],
        name=d["name"],
        status=RunStatus(d["status"]),
        start_time=d["start_time"],
        end_time=d["end_time"],
        parent_run_id=d["parent_run_id"],
        created_by=d["created_by"],
        params=d["params"],
        tags=d["tags"],
        metrics={k: _metric(m) for k, m in d["metrics"].items()},
    )


def _artifact(d: Mapping[str, Any]) -> Artifact:
    return Artifact(d["path"], d["digest"], d["size"])


def _model_version(d: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=d["name"],
        version=d["version"],
        flavor=d["flavor"],
        status=d["status"],
        description=d["description"],
        run_id=d["run_id"],
        signature=d["signature"],
        environment=d["environment"],
        input_example=d["input_example"],
        files={k: ModelFile(**f) for k, f in d["files"].items()},
        aliases=tuple(d["aliases"]),
        tags=d["tags"],
        datasets=tuple((ref["name"], ref["version"]) for ref in d["datasets"]),
        created_at=d["created_at"],
        created_by=d["created_by"],
    )


def _dataset_version(d: Mapping[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        name=d["name"],
        version=d["version"],
        digest=d["digest"],
        rows=d["rows"],
        bytes=d["bytes"],
        schema=d["schema"],
        profile=d.get("profile") or {},
        validation=d.get("validation"),
        contract_version=d["contract_version"],
        status=d["status"],
        source=d["source"],
        created_at=d["created_at"],
        created_by=d["created_by"],
        run_id=d["run_id"],
    )
