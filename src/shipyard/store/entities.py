"""What the store hands out: frozen dataclasses, never ORM rows or result rows."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclasses.dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    description: str | None
    created_at: int  # ms since the epoch


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str
    value: float
    step: int
    timestamp: int  # ms since the epoch


@dataclasses.dataclass(frozen=True)
class Artifact:
    path: str
    digest: str
    size: int


@dataclasses.dataclass(frozen=True)
class Run:
    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    created_by: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    #: The latest point of each metric (highest step, then latest timestamp).
    metrics: Mapping[str, Metric]


@dataclasses.dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    #: Pass as ``page_token`` for the next page; ``None`` on the last page.
    next_page_token: str | None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    seq: int
    event_id: str
    time: int
    actor: str
    action: str
    object_type: str
    object_id: str
    payload: str  # canonical JSON
    payload_digest: str
    prev_hash: str
    hash: str


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str
    description: str | None
    created_at: int
    latest_version: int | None


@dataclasses.dataclass(frozen=True)
class DatasetVersion:
    """An immutable, content-addressed snapshot of a dataset (Parquet in the blob store)."""

    name: str
    version: int
    digest: str
    rows: int
    bytes: int
    #: [{"name": ..., "type": arrow type string, "nullable": bool}, ...]
    schema: list[dict[str, Any]]
    #: Per-column statistics; see ``shipyard.data`` for the fields.
    profile: dict[str, Any]
    #: The contract check's report, or None when no contract was checked.
    validation: dict[str, Any] | None
    contract_version: int | None
    status: str  # "valid", or "warn" when stored with a failed contract check
    source: str | None
    created_at: int
    created_by: str
    run_id: str | None

    @property
    def uri(self) -> str:
        return f"dataset:{self.name}@{self.version}"


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    name: str
    description: str | None
    tags: dict[str, str]
    #: alias -> version number
    aliases: dict[str, int]
    latest_version: int | None
    created_at: int
    updated_at: int


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """One stored format of a model version: a blob and what its loader needs."""

    format: str  # "native" (as logged) or "onnx"
    serialization: str  # "skops", "onnx" or "pickle"
    digest: str
    size: int
    meta: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """An immutable version of a registered model; address it as ``models:/NAME/VERSION``."""

    name: str
    version: int
    flavor: str
    status: str  # "ready" or "archived"
    description: str | None
    run_id: str | None
    #: See ``shipyard.models.Signature.to_dict``; None when logged without an example.
    signature: dict[str, Any] | None
    #: {"python": "3.11.7", "packages": {"scikit-learn": "1.5.2", ...}}
    environment: dict[str, Any]
    #: A few rows of the input example, as records.
    input_example: list[dict[str, Any]] | None
    #: format -> file; "native" always, "onnx" once exported
    files: dict[str, ModelFile]
    aliases: tuple[str, ...]
    tags: dict[str, str]
    #: The dataset versions the training run had read, as (name, version).
    datasets: tuple[tuple[str, int], ...]
    created_at: int
    created_by: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclasses.dataclass(frozen=True)
class User:
    """Someone who may call a Shipyard server, with the role that bounds what they may do."""

    name: str
    role: str  # "viewer", "editor" or "admin"
    disabled: bool
    created_at: int
    created_by: str


@dataclasses.dataclass(frozen=True)
class Token:
    """An API token's public record: never its secret, nor the secret's hash."""

    #: Public short id, the middle of ``sy_<token_id>_<secret>``; revoke by it.
    token_id: str
    user: str
    name: str | None
    created_at: int
    created_by: str
    last_used_at: int | None
    expires_at: int | None
    revoked_at: int | None

    def status(self, now: int) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now`` (ms since the epoch)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
