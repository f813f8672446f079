"""The explicit tracking API: every call is one transaction against the store."""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard import _files
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, ConfigError, InvalidInput, NotFound, UnsafePath
from shipyard.store import Store, open_store
from shipyard.store import artifacts as artifacts_repo
from shipyard.store import experiments as experiments_repo
from shipyard.store import metrics as metrics_repo
from shipyard.store import models as models_repo
from shipyard.store import runs as runs_repo
from shipyard.store import search as search_repo
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
from shipyard.tracking import _filter, _validate
from shipyard.tracking._alerts import AlertsMixin
from shipyard.tracking._deployments import DeploymentsMixin
from shipyard.tracking._monitors import MonitorsMixin

if TYPE_CHECKING:
    from shipyard.blobs import BlobStore
    from shipyard.data._diff import DatasetDiff
    from shipyard.governance.audit import AuditReport
    from shipyard.governance.lineage import Lineage

MAX_RESULTS_LIMIT = 50_000
SERVER_SCHEMES = ("http://", "https://")
MetricLike = Metric | tuple[str, float] | tuple[str, float, int] | tuple[str, float, int, int]


class Client(DeploymentsMixin, MonitorsMixin, AlertsMixin):
    """Experiments, runs, params, metrics, tags and artifacts in one metadata store.

    ``Client()`` reads its settings (``SHIPYARD_URI``, ``SHIPYARD_ARTIFACTS``,
    ``SHIPYARD_HOME``...); ``uri`` and ``artifacts`` override them.
    """

    def __new__(
        cls,
        uri: str | None = None,
        *,
        artifacts: str | None = None,
        settings: Settings | None = None,
    ) -> Client:
        """``Client(...)`` is a :class:`~shipyard.tracking._remote.RemoteClient` when the
        resolved URI is ``http(s)://``: the same API, served by a Shipyard server."""
        if cls is Client:
            resolved = settings or Settings.load(uri=uri, artifacts=artifacts)
            if is_server_uri(resolved.uri):
                from shipyard.tracking._remote import RemoteClient

                return super().__new__(RemoteClient)
        return super().__new__(cls)

    def __init__(
        self,
        uri: str | None = None,
        *,
        artifacts: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or Settings.load(uri=uri, artifacts=artifacts)
        if is_server_uri(self.settings.uri):
            raise ConfigError(
                f"The store URI {self.settings.uri!r} names a Shipyard server, which this "
                f"{type(self).__name__} cannot open directly.",
                hint="Use shipyard.Client(...) for a server, or sqlite:///... or "
                "postgresql+psycopg://... to open a store.",
            )
        self.store: Store = open_store(self.settings.uri)
        self._blobs: BlobStore | None = None
        # Ids never change once given, so name->id and run->key lookups are cached.
        self._run_pks: dict[str, int] = {}
        self._experiment_ids: dict[str, str] = {}
        self._run_experiments: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Client(uri={self.store.engine.url.render_as_string(hide_password=True)!r})"

    def __copy__(self) -> Client:
        # Never through __new__: a copy keeps its class whatever the settings say now.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    @property
    def actor(self) -> str:
        return self.settings.actor

    @property
    def closed(self) -> bool:
        """True once the store was closed by its owner: the client cannot be used any more."""
        return self.store.closed

    def _store_key(self) -> object:
        """Equal for two clients that reach the same store (lineage may link across them)."""
        return id(self.store)

    def as_actor(self, actor: str) -> Client:
        """This client acting for ``actor``: same store, blobs and caches; its writes are audited
        under that name (the server uses one per authenticated user)."""
        clone = copy.copy(self)
        clone.settings = dataclasses.replace(self.settings, actor=actor)
        return clone

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            from shipyard.blobs import open_blob_store

            self._blobs = open_blob_store(
                self.settings.artifacts, s3_endpoint_url=self.settings.s3_endpoint_url
            )
        return self._blobs

    def upgrade_db(self) -> bool:
        """Migrate the store's schema to the newest revision; True if anything changed."""
        return self.store.upgrade()

    # ------------------------------------------------------------------ experiments

    def create_experiment(self, name: str, description: str | None = None) -> Experiment:
        _validate.name("experiment", name)
        with self.store.write(self.actor) as tx:
            return experiments_repo.create(tx, name, description)

    def get_experiment(self, name_or_id: str) -> Experiment:
        with self.store.read() as conn:
            return experiments_repo.get(conn, str(name_or_id))

    def list_experiments(self) -> list[Experiment]:
        with self.store.read() as conn:
            return experiments_repo.list_all(conn)

    def _experiment_id(self, experiment: str | None) -> str:
        """The id of an experiment named (or numbered) ``experiment``, created if missing."""
        name = _validate.name("experiment", experiment or "Default")
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        with self.store.read() as conn:
            found = experiments_repo.find(conn, name)
        if found is None and name.isdigit():
            with contextlib.suppress(NotFound), self.store.read() as conn:
                found = experiments_repo.get(conn, name)
        if found is None:
            try:
                with self.store.write(self.actor) as tx:
                    found = experiments_repo.find(tx.conn, name) or experiments_repo.create(
                        tx, name
                    )
            except AlreadyExists:
                # Another process created it between our read and our write.
                with self.store.read() as conn:
                    found = experiments_repo.get(conn, name)
        self._experiment_ids[name] = found.experiment_id
        return found.experiment_id

    # ------------------------------------------------------------------------- runs

    def create_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a RUNNING run; the experiment (name or id) is created if it is missing."""
        return self._start_run(experiment, name, tags, parent_run_id, heartbeat=False)

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
        """Insert a RUNNING run and return it as ``get_run`` would, built from what was
        written: a new run has no params or metrics, and reading it back cost two thirds
        of the call."""
        if experiment_id is None:
            experiment_id = self._experiment_id(experiment)
        run_id = uuid.uuid4().hex
        run_name = _validate.name("run", name) if name is not None else f"run-{run_id[:8]}"
        tag_values = _validate.text_mapping("tag", tags)
        start_time = runs_repo.now_ms()
        with self.store.write(self.actor) as tx:
            if parent_run_id is not None:
                runs_repo.pk_of(tx.conn, parent_run_id)
            pk = runs_repo.create(
                tx,
                run_id=run_id,
                experiment_id=experiment_id,
                name=run_name,
                parent_run_id=parent_run_id,
                tags_=tag_values,
                heartbeat=heartbeat,
                start_time=start_time,
            )
        self._run_experiments[run_id] = experiment_id
        self._run_pks[run_id] = pk
        return Run(
            run_id=run_id,
            experiment_id=experiment_id,
            name=run_name,
            status=RunStatus.RUNNING,
            start_time=start_time,
            end_time=None,
            parent_run_id=parent_run_id,
            created_by=self.actor,
            params={},
            tags=tag_values,
            metrics={},
        )

    def _experiment_of(self, run_id: str) -> str:
        """The experiment id of a run this client created (cached), or looked up."""
        cached = self._run_experiments.get(run_id)
        return cached if cached is not None else self.get_run(run_id).experiment_id

    def _run_pk(self, run_id: str) -> int:
        pk = self._run_pks.get(run_id)
        if pk is None:
            if not isinstance(run_id, str):
                raise InvalidInput(f"A run id is a string; got {type(run_id).__name__}.")
            with self.store.read() as conn:
                pk = self._run_pks[run_id] = runs_repo.pk_of(conn, run_id)
        return pk

    def get_run(self, run_id: str) -> Run:
        pk = self._run_pk(run_id)
        with self.store.read() as conn:
            (run,) = runs_repo.load(conn, [pk], stale_before=self._stale_before())
        return run

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> None:
        self._end_run(run_id, _status(status), points=())

    def _end_run(
        self, run_id: str, status: RunStatus, points: Sequence[metrics_repo.Point]
    ) -> None:
        """End a run, writing still-buffered points in the same transaction."""
        with self.store.write(self.actor) as tx:
            metrics_repo.append(tx.conn, points)
            runs_repo.end(tx, run_id, status)

    def _stale_before(self) -> int:
        return int((time.time() - self.settings.heartbeat_timeout) * 1000)

    def _heartbeat(self, run_ids: Iterable[str]) -> None:
        with self.store.write(self.actor) as tx:
            runs_repo.heartbeat(tx.conn, [self._run_pk(r) for r in run_ids])

    # ------------------------------------------------------------ params, metrics, tags

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params={key: value})

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.log_batch(run_id, metrics=[Metric(key, value, step, timestamp or _now_ms())])

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[MetricLike] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Write metrics, params and tags of one run in one transaction: all or nothing.

        ``metrics`` holds :class:`Metric` objects or tuples ``(key, value[, step[, timestamp]])``.
        """
        pk = self._run_pk(run_id)
        points = self._points(pk, metrics)
        param_values = _validate.text_mapping("param", params)
        tag_values = _validate.text_mapping("tag", tags)
        with self.store.write(self.actor) as tx:
            runs_repo.log_params(tx, run_id, pk, param_values)
            runs_repo.set_tags(tx, run_id, pk, tag_values)
            metrics_repo.append(tx.conn, points)

    def _points(self, run_pk: int, metrics: Iterable[MetricLike]) -> list[metrics_repo.Point]:
        now = _now_ms()
        points = []
        for item in metrics:
            if isinstance(item, Metric):
                points.append(
                    _validate.point(run_pk, item.key, item.value, item.step, item.timestamp)
                )
            elif isinstance(item, tuple) and 2 <= len(item) <= 4:
                key, value, *rest = item
                step = rest[0] if rest else 0
                timestamp = rest[1] if len(rest) == 2 else now
                points.append(_validate.point(run_pk, key, value, step, timestamp))
            else:
                raise InvalidInput(
                    f"A metric is a Metric or a tuple (key, value[, step[, timestamp]]); got {item!r}."
                )
        return points

    def _append_points(self, points: Sequence[metrics_repo.Point]) -> None:
        with self.store.write(self.actor) as tx:
            metrics_repo.append(tx.conn, points)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        pk = self._run_pk(run_id)
        with self.store.read() as conn:
            return metrics_repo.history(conn, pk, _validate.key("metric", key))

    # ------------------------------------------------------------------------ search

    def search_runs(
        self,
        experiment: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of runs matching ``filter``, in ``order_by`` order.

        ``experiment``: a name or id, a list of them, or None for all.
        ``filter``: e.g. ``"metrics.auc > 0.9 and params.model = 'lr'"``.
        ``order_by``: e.g. ``["metrics.auc DESC"]``; ties go to the newest run.
        """
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
        where = _filter.parse_filter(filter)
        ordering = _filter.parse_order_by(order_by)
        offset = _decode_page_token(page_token)
        with self.store.read() as conn:
            experiment_ids = None
            if experiment is not None:
                names = [experiment] if isinstance(experiment, str) else list(experiment)
                experiment_ids = [experiments_repo.get(conn, str(e)).experiment_id for e in names]
            stale_before = self._stale_before()
            pks, more = search_repo.search(
                conn,
                experiment_ids=experiment_ids,
                where=where,
                order_by=ordering,
                limit=max_results,
                offset=offset,
                stale_before=stale_before,
            )
            runs = runs_repo.load(conn, pks, stale_before=stale_before)
        token = _encode_page_token(offset + max_results) if more else None
        return RunPage(runs, token)

    # --------------------------------------------------------------------- artifacts

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], name: str | None = None
    ) -> list[Artifact]:
        """Store a file or a folder's files as blobs of ``run_id``.

        ``name`` is the artifact path (default: the file's or folder's own
        name); a folder's files keep their relative paths below it. Symlinks
        leading out of the folder are refused.
        """
        source = Path(local_path)
        if not source.exists():
            raise NotFound("file", str(source), hint="Check the path passed to log_artifact.")
        base = _files.safe_relative_path(name if name is not None else source.name)
        files = _collect_files(source)
        pk = self._run_pk(run_id)
        stored = []
        for relative, path in files:
            logical = str(base / relative) if relative else str(base)
            info = self.blobs.put(path)
            stored.append(Artifact(logical, info.digest, info.size))
        with self.store.write(self.actor) as tx:
            artifacts_repo.record(tx, run_id, pk, stored)
        return stored

    def list_artifacts(self, run_id: str, path: str = "") -> list[Artifact]:
        prefix = str(_files.safe_relative_path(path)) if path else ""
        pk = self._run_pk(run_id)
        with self.store.read() as conn:
            return artifacts_repo.list_(conn, pk, prefix)

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Download an artifact (or every artifact under a folder path) into ``dest``.

        Files land at ``dest/<artifact path>``; each blob is verified against
        its digest on the way. Returns the local path of ``path``.
        """
        found = self.list_artifacts(run_id, path)
        if not found:
            raise NotFound("artifact", f"{run_id}/{path}", hint="List them with list_artifacts().")
        root = Path(dest)
        root.mkdir(parents=True, exist_ok=True)
        for artifact in found:
            target = _files.confine(root, artifact.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.download(artifact.digest, target)
        return _files.confine(root, path) if path else root

    # ------------------------------------------------------------------------- audit

    def audit_events(
        self,
        object_type: str | None = None,
        object_id: str | None = None,
        limit: int | None = None,
        *,
        newest: bool = False,
    ) -> list[AuditEvent]:
        """Audit events in chain order; ``limit`` keeps the first N, or the last N with ``newest``."""
        from shipyard.governance import audit

        return audit.events(
            self.store, object_type=object_type, object_id=object_id, limit=limit, newest=newest
        )

    def verify_audit(self) -> AuditReport:
        """Recompute the audit chain; the report names the first bad event, if any."""
        from shipyard.governance import audit

        return audit.verify(self.store)

    # ----------------------------------------------------------------- users, tokens

    def create_user(self, name: str, role: str) -> User:
        """Add a user who may call a server with ``role`` (viewer, editor or admin)."""
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        args = _users.user_name(name), _users.role(role)
        with self.store.write(self.actor) as tx:
            return users_repo.create_user(tx, *args, now=_now_ms())

    def get_user(self, name: str) -> User:
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        with self.store.read() as conn:
            return users_repo.get_user(conn, _users.user_name(name))

    def list_users(self) -> list[User]:
        """Every user, by name."""
        from shipyard.store import users as users_repo

        with self.store.read() as conn:
            return users_repo.list_users(conn)

    def set_user_role(self, name: str, role: str) -> User:
        """Change a user's role; it applies to their next request, with every token they hold."""
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        args = _users.user_name(name), _users.role(role)
        with self.store.write(self.actor) as tx:
            return users_repo.set_role(tx, *args)

    def disable_user(self, name: str, disabled: bool = True) -> User:
        """Disable a user (none of their tokens works any more), or enable them again."""
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        checked = _users.user_name(name)
        with self.store.write(self.actor) as tx:
            return users_repo.set_disabled(tx, checked, bool(disabled))

    def create_token(
        self, user: str, name: str | None = None, *, expires_days: int | None = None
    ) -> tuple[Token, str]:
        """A new API token for ``user``: its record, and the token text ``sy_<id>_<secret>``.

        The text is returned only here: the store keeps a hash of the secret, so
        it cannot be shown again. A lost token is revoked and replaced.
        """
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        checked = _users.user_name(user)
        label = _users.token_label(name)
        days = _users.expires_days(expires_days)
        now = _now_ms()
        expires_at = None if days is None else now + days * 86_400_000
        with self.store.write(self.actor) as tx:
            return users_repo.create_token(tx, checked, name=label, expires_at=expires_at, now=now)

    def list_tokens(self, user: str | None = None) -> list[Token]:
        """Token records (never a secret or its hash), oldest first; one user's with ``user``."""
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        checked = None if user is None else _users.user_name(user)
        with self.store.read() as conn:
            return users_repo.list_tokens(conn, checked)

    def revoke_token(self, token_id: str) -> Token:
        """Revoke a token by its id; every server refuses it from the next request on."""
        from shipyard.governance import _users
        from shipyard.store import users as users_repo

        checked = _users.token_id(token_id)
        with self.store.write(self.actor) as tx:
            return users_repo.revoke_token(tx, checked, now=_now_ms())

    def authenticate(self, token: str) -> User | None:
        """The user a token belongs to, or None when it is malformed, unknown, revoked or
        expired, or its user is disabled. Reads the store every time: nothing is cached."""
        from shipyard.store import users as users_repo

        now = _now_ms()
        with self.store.read() as conn:
            found = users_repo.authenticate(conn, token, now=now)
        if found is None:
            return None
        user, record = found
        if record.last_used_at is None or now - record.last_used_at >= users_repo.TOUCH_INTERVAL_MS:
            with self.store.write(self.actor) as tx:
                users_repo.touch(tx.conn, record.token_id, now=now)
        return user

    # --------------------------------------------------------------- model registry

    def get_model(self, name: str) -> RegisteredModel:
        """A registered model with its tags, aliases and newest version number."""
        from shipyard.models import _uri

        with self.store.read() as conn:
            return models_repo.get_model(conn, _uri.check_name(name))

    def search_models(
        self,
        name: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
    ) -> list[RegisteredModel]:
        """Registered models whose name contains ``name``, carrying all ``tags`` and ``alias``."""
        with self.store.read() as conn:
            return models_repo.search_models(conn, name=name, tags=tags, alias=alias)

    def get_model_version(self, uri_or_name: str, version: int | None = None) -> ModelVersion:
        """``get_model_version("credit", 3)`` or ``get_model_version("models:/credit@champion")``."""
        from shipyard.models import _uri

        if version is None:
            ref = _uri.parse(uri_or_name)
            name, alias, number = ref.name, ref.alias, ref.version
        else:
            name, alias, number = _uri.check_name(uri_or_name), None, _uri.check_version(version)
        with self.store.read() as conn:
            if number is None:
                number = models_repo.resolve_alias(conn, name, alias or "")
            return models_repo.get_version(conn, name, number)

    def model_versions(self, name: str) -> list[ModelVersion]:
        from shipyard.models import _uri

        with self.store.read() as conn:
            return models_repo.list_versions(conn, _uri.check_name(name))

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point ``alias`` at ``version``; return the version it pointed at before, if any."""
        from shipyard.models import _uri

        args = _uri.check_name(name), _uri.check_alias(alias), _uri.check_version(version)
        with self.store.write(self.actor) as tx:
            return models_repo.set_alias(tx, *args)

    def delete_alias(self, name: str, alias: str) -> int:
        """Remove ``alias``; return the version it pointed at."""
        from shipyard.models import _uri

        args = _uri.check_name(name), _uri.check_alias(alias)
        with self.store.write(self.actor) as tx:
            return models_repo.delete_alias(tx, *args)

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every alias move of a model, oldest first: time, actor, alias, previous, version."""
        from shipyard.models import _uri

        with self.store.read() as conn:
            models_repo.model_id(conn, _uri.check_name(name))
            return models_repo.alias_history(conn, name)

    def set_model_version_status(self, name: str, version: int, status: str) -> None:
        """Mark a version ``ready`` or ``archived`` (archived versions are never ``@latest``)."""
        from shipyard.models import _uri

        if status not in models_repo.STATUSES:
            raise InvalidInput(
                f"A model version status is one of {', '.join(models_repo.STATUSES)}; got {status!r}."
            )
        args = _uri.check_name(name), _uri.check_version(version)
        with self.store.write(self.actor) as tx:
            models_repo.set_status(tx, *args, status)

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        """Set a registered model's description and add or change its tags."""
        from shipyard.models import _uri

        _uri.check_name(name)
        tags = _validate.text_mapping("tag", tags)
        with self.store.write(self.actor) as tx:
            models_repo.update_model(tx, name, description=description, tags=tags)
            return models_repo.get_model(tx.conn, name)

    # ------------------------------------------------------ artifacts, one at a time

    def get_artifact(self, run_id: str, path: str) -> Artifact:
        """The artifact stored at exactly ``path`` (a file, not a folder) of ``run_id``."""
        logical = str(_files.safe_relative_path(path))
        pk = self._run_pk(run_id)
        with self.store.read() as conn:
            return artifacts_repo.get(conn, run_id, pk, logical)

    def log_artifact_stream(
        self, run_id: str, name: str, chunks: Iterable[bytes | bytearray | memoryview]
    ) -> Artifact:
        """Store bytes arriving in chunks as the artifact ``name`` of ``run_id``.

        Memory stays bounded by one chunk. If iterating ``chunks`` raises (a
        truncated upload, a digest that does not match), the blob is not
        stored and nothing is recorded. The run is checked before any byte is read.
        """
        logical = str(_files.safe_relative_path(name))
        pk = self._run_pk(run_id)
        with self.blobs.writer() as sink:
            for chunk in chunks:
                sink.write(chunk)
        assert sink.info is not None
        artifact = Artifact(logical, sink.info.digest, sink.info.size)
        with self.store.write(self.actor) as tx:
            artifacts_repo.record(tx, run_id, pk, [artifact])
        return artifact

    # ------------------------------------------------------------------------ datasets
    # The dataset and registry functions (shipyard.data, shipyard.models) call these, so a
    # RemoteClient can serve them over HTTP; the domain logic stays in those packages.

    def list_datasets(self) -> list[Dataset]:
        """Datasets by name, each with its newest version number."""
        from shipyard.store import datasets as datasets_repo

        with self.store.read() as conn:
            return datasets_repo.list_datasets(conn)

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A dataset version's record; the newest without ``version``."""
        from shipyard.store import datasets as datasets_repo

        with self.store.read() as conn:
            return datasets_repo.get_version(conn, name, version)

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        from shipyard.store import datasets as datasets_repo

        with self.store.read() as conn:
            return datasets_repo.list_versions(conn, name)

    def dataset_contract(self, name: str) -> str:
        """The dataset's current contract as YAML (NotFound, or InvalidInput when it has none)."""
        from shipyard.store import datasets as datasets_repo

        with self.store.read() as conn:
            dataset_pk = datasets_repo.dataset_id(conn, name)
            if dataset_pk is None:
                raise NotFound("dataset", name, hint="List datasets with `shipyard data list`.")
            current = datasets_repo.latest_contract(conn, dataset_pk)
        if current is None:
            raise InvalidInput(
                f"Dataset {name!r} has no contract yet.",
                hint="Register a first version: its contract is inferred from it.",
            )
        return current[1]

    def set_dataset_contract(self, name: str, contract_yaml: str) -> int:
        """Store a new version of the dataset's contract (YAML, checked by the caller)."""
        from shipyard.store import datasets as datasets_repo

        with self.store.write(self.actor) as tx:
            dataset_pk = datasets_repo.dataset_id(tx.conn, name)
            if dataset_pk is None:
                raise InvalidInput(
                    f"No dataset {name!r}.",
                    hint="Register a first version before editing its contract.",
                )
            return datasets_repo.add_contract(tx, dataset_pk, name, contract_yaml)

    def record_input(self, run_id: str, name: str, version: int) -> None:
        """Record that run ``run_id`` read dataset version ``name@version`` (once per pair)."""
        from shipyard.store import datasets as datasets_repo

        pk = self._run_pk(run_id)
        with self.store.write(self.actor) as tx:
            datasets_repo.record_input(tx, run_id, pk, name, version)

    def _dataset_bytes(self, found: DatasetVersion) -> bytes:
        """The version's Parquet bytes, verified against its digest."""
        return self.blobs.get(found.digest)

    def _register_dataset(
        self, name: str, data: Any, *, run_id: str | None, **options: Any
    ) -> DatasetVersion:
        from shipyard.data import _register

        return _register.register(self, name, data, run_id=run_id, **options)

    def _diff_datasets(self, name: str, old: int, new: int) -> DatasetDiff:
        from shipyard.data._diff import diff

        return diff(self, name, old, new)

    def lineage(self, ref: str, *, depth: int = 25) -> Lineage:
        """Upstream and downstream of ``dataset:NAME@V``, ``model:NAME/V`` or ``run:ID``."""
        from shipyard.governance.lineage import lineage

        return lineage(self.store, ref, stale_before=self._stale_before(), depth=depth)

    # ------------------------------------------------------------ model files

    def _register_model_version(
        self, name: str, path: Path, *, serialization: str, meta: Mapping[str, Any], **fields: Any
    ) -> ModelVersion:
        """Store the model file at ``path`` and register it as the next version of ``name``.

        The bytes are stored before the metadata: a failure in between leaves an
        unreferenced blob (content-addressed, harmless), never a version without its bytes.
        """
        info = self.blobs.put(path)
        native = ModelFile("native", serialization, info.digest, info.size, dict(meta))
        return self._record_model_version(name, native=native, **fields)

    def _record_model_version(
        self,
        name: str,
        *,
        flavor: str,
        native: ModelFile,
        environment: Mapping[str, Any],
        signature: Mapping[str, Any] | None,
        input_example: Sequence[Mapping[str, Any]] | None,
        description: str | None,
        tags: Mapping[str, str],
        run_id: str | None,
    ) -> ModelVersion:
        """Register a version whose native file is stored already as ``native.digest``."""
        run_pk = None if run_id is None else self._run_pk(run_id)
        with self.store.write(self.actor) as tx:
            return models_repo.register_version(
                tx,
                name,
                flavor=flavor,
                native=native,
                environment=environment,
                signature=signature,
                input_example=input_example,
                description=description,
                tags=tags,
                run_id=run_id,
                run_pk=run_pk,
            )

    def _add_model_file(
        self,
        version: ModelVersion,
        data: bytes,
        *,
        format: str,
        serialization: str,
        meta: Mapping[str, Any],
    ) -> ModelVersion:
        """Store ``data`` as the ``format`` file of an existing version (replacing one there);
        the bytes are stored first, as for a new version."""
        info = self.blobs.put(data)
        file = ModelFile(format, serialization, info.digest, info.size, dict(meta))
        return self._record_model_file(version.name, version.version, file)

    def _record_model_file(self, name: str, version: int, file: ModelFile) -> ModelVersion:
        """Record ``file``, stored already under its digest, as a format of ``name``/``version``."""
        with self.store.write(self.actor) as tx:
            return models_repo.add_file(tx, name, version, file)

    def _download_model_file(self, version: ModelVersion, file: ModelFile, dest: Path) -> None:
        """Write ``file`` of ``version`` to ``dest``, verified against its registered digest."""
        self.blobs.download(file.digest, dest)


def is_server_uri(uri: str) -> bool:
    """Whether ``uri`` names a Shipyard server rather than a metadata store."""
    return uri.lower().startswith(SERVER_SCHEMES)


def _collect_files(source: Path) -> list[tuple[str, Path]]:
    """(path relative to ``source``, file) pairs; symlinks must stay inside ``source``."""
    if source.is_file():
        return [("", source)]
    root = source.resolve()
    found = []
    for folder, _dirs, names in os.walk(source, followlinks=False):
        for file_name in sorted(names):
            path = Path(folder) / file_name
            relative = path.relative_to(source).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise UnsafePath(str(path), "it is a symlink that leads out of the logged folder")
            if path.is_file():
                found.append((str(_files.safe_relative_path(relative)), path))
    return sorted(found)


def _status(value: RunStatus | str) -> RunStatus:
    try:
        status = RunStatus(value)
    except ValueError:
        raise InvalidInput(
            f"Unknown run status {value!r}; expected one of {', '.join(s.value for s in RunStatus)}."
        ) from None
    if status is RunStatus.RUNNING:
        raise InvalidInput("A run cannot be ended as RUNNING; use FINISHED, FAILED or KILLED.")
    return status


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_page_token(token: str | None) -> int:
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError(offset)
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeError):
        raise InvalidInput(
            f"Bad page_token {token!r}.",
            hint="Pass the next_page_token of the previous page unchanged, or None for the first page.",
        ) from None
    return offset
