"""Request and response bodies of the REST API, as pydantic models.

Conventions, the same on every route:

- Times are whole milliseconds since the Unix epoch (``int``).
- A metric value that is not a finite number travels as one of the strings
  ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (JSON has no such numbers);
  every other value is a JSON number. Requests may send either form.
- Requests refuse unknown fields (``extra="forbid"``) and bound every size;
  responses mirror the entities in :mod:`shipyard.store.entities`.
- Lists come as ``{"items": [...], "next_page_token": str | null}``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from shipyard.store._schema import KEY_LENGTH, NAME_LENGTH
from shipyard.store.entities import RunStatus
from shipyard.tracking._validate import MAX_VALUE_LENGTH

T = TypeVar("T")

#: Largest batch of metric points one request may carry.
MAX_METRICS_PER_BATCH = 10_000
#: Largest number of params or of tags one request may carry.
MAX_PARAMS_PER_BATCH = 1_000
MAX_TAGS_PER_BATCH = 1_000
MAX_DESCRIPTION_LENGTH = 64_000
MAX_FILTER_LENGTH = 10_000
#: The largest contract document (YAML) accepted.
MAX_CONTRACT_LENGTH = 1_000_000
#: Integers in requests stay within what every JSON parser reads exactly (2**53 - 1).
MAX_INT = 2**53 - 1

NonFinite = Literal["NaN", "Infinity", "-Infinity"]
_NON_FINITE: dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _non_finite_as_text(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _integral(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer; so do we (3.5 stays a float, and is refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def metric_float(value: float | str) -> float:
    """A request's metric value as the float the Client takes."""
    return _NON_FINITE[value] if isinstance(value, str) else float(value)


#: A float that may be NaN or infinite: a JSON number, or "NaN", "Infinity", "-Infinity".
MetricValue = Annotated[
    StrictFloat | NonFinite,
    BeforeValidator(_non_finite_as_text),
    Field(
        description='A number; NaN and infinities are the strings "NaN", "Infinity", "-Infinity".'
    ),
]

Key = Annotated[StrictStr, Field(min_length=1, max_length=KEY_LENGTH)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=NAME_LENGTH)]
Text = Annotated[StrictStr, Field(max_length=MAX_VALUE_LENGTH)]
#: Params and tags are stored as text; numbers and booleans are turned into their text.
TextValue = Text | StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]


def bounded_int(low: int, high: int) -> Any:
    """An integer from ``low`` to ``high`` (3.0 counts, 3.5 and "3" do not)."""
    return Annotated[StrictInt, Field(ge=low, le=high), BeforeValidator(_integral)]


Millis = bounded_int(0, MAX_INT)
Step = bounded_int(-MAX_INT, MAX_INT)
Description = Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION_LENGTH)]


class Request(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_page_token`` back as ``page_token`` for the next."""

    items: list[T]
    next_page_token: str | None = None


class ErrorProblem(BaseModel):
    where: str
    problem: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    #: Machine-readable and stable: not_found, invalid_input, conflict, ...
    code: str
    #: What was expected, what came.
    message: str
    #: How to fix it, when there is something to say.
    hint: str | None = None
    #: For a request the schema refused: each field and what is wrong with it.
    problems: list[ErrorProblem] | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorDetail


# ------------------------------------------------------------------------- tracking


class ExperimentCreate(Request):
    name: Name
    description: Description | None = None


class Experiment(Response):
    experiment_id: str
    name: str
    description: str | None
    created_at: int


class Metric(Response):
    key: str
    value: MetricValue
    step: int
    timestamp: int


class Run(Response):
    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    created_by: str
    params: dict[str, str]
    tags: dict[str, str]
    #: The latest point of each metric.
    metrics: dict[str, Metric]


class RunCreate(Request):
    #: An experiment name or id; created when missing. Default: "Default".
    experiment: Name | None = None
    name: Name | None = None
    tags: Annotated[dict[Key, TextValue], Field(max_length=MAX_TAGS_PER_BATCH)] | None = None
    parent_run_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    #: Expect heartbeats (``POST /runs/{id}/heartbeat``): the run shows FAILED once they stop.
    heartbeat: StrictBool = False


class MetricPoint(Request):
    key: Key
    value: MetricValue
    step: Step = 0
    #: Default: the time the server received the request.
    timestamp: Millis | None = None


Params = Annotated[dict[Key, TextValue], Field(max_length=MAX_PARAMS_PER_BATCH)]
Tags = Annotated[dict[Key, TextValue], Field(max_length=MAX_TAGS_PER_BATCH)]
MetricPoints = Annotated[list[MetricPoint], Field(max_length=MAX_METRICS_PER_BATCH)]


class LogBatch(Request):
    """Metrics, params and tags of one run, written in one transaction: all or nothing."""

    metrics: MetricPoints = []
    params: Params = {}
    tags: Tags = {}


class LogMetrics(Request):
    metrics: MetricPoints


class LogParams(Request):
    params: Params


class SetTags(Request):
    tags: Tags


class RunEnd(Request):
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"
    #: Points written in the same transaction that ends the run (a client's last buffer).
    metrics: Annotated[list[MetricPoint], Field(max_length=MAX_METRICS_PER_BATCH)] = []


class Heartbeat(Response):
    run_id: str
    #: When the server recorded it.
    time: int


class RunInputCreate(Request):
    dataset: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    version: bounded_int(1, MAX_INT)  # type: ignore[valid-type]


class RunInput(Response):
    run_id: str
    dataset: str
    version: int


class Logged(Response):
    """What a logging request wrote."""

    metrics: int
    params: int
    tags: int


class RunSearch(Request):
    #: Experiment names or ids; all experiments when omitted.
    experiments: Annotated[list[Name], Field(max_length=100)] | None = None
    filter: Annotated[StrictStr, Field(max_length=MAX_FILTER_LENGTH)] | None = None
    order_by: (
        Annotated[list[Annotated[StrictStr, Field(max_length=300)]], Field(max_length=20)] | None
    ) = None
    max_results: bounded_int(1, 1000) = 100  # type: ignore[valid-type]
    page_token: Annotated[StrictStr, Field(max_length=1000)] | None = None


class Artifact(Response):
    path: str
    digest: str
    size: int


# ------------------------------------------------------------------------- datasets


class Dataset(Response):
    name: str
    description: str | None
    created_at: int
    latest_version: int | None


class ColumnSchema(Response):
    name: str
    #: The Arrow type, e.g. "int64", "double", "string", "timestamp[us]".
    type: str
    nullable: bool


class ValidationFailure(Response):
    expectation: str
    column: str | None
    failed: int
    message: str
    examples: list[dict[str, Any]] = []


class ValidationReport(Response):
    passed: bool
    rows_checked: int
    failures: list[ValidationFailure]


class DatasetProfile(Response):
    """Per-column statistics; see ``shipyard.data`` for each column's fields."""

    model_config = ConfigDict(extra="allow")

    format: int | None = None
    rows: int | None = None
    columns: dict[str, dict[str, Any]] = {}


class DatasetVersionSummary(Response):
    """A version without its profile and validation report (as lists show it)."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    name: str
    version: int
    uri: str
    digest: str
    rows: int
    bytes: int
    columns: list[ColumnSchema] = Field(alias="schema", serialization_alias="schema")
    contract_version: int | None
    status: Literal["valid", "warn"]
    source: str | None
    created_at: int
    created_by: str
    run_id: str | None


class DatasetVersion(DatasetVersionSummary):
    profile: DatasetProfile
    validation: ValidationReport | None


class DatasetContract(Response):
    name: str
    #: The contract as YAML (see ``shipyard data contract``).
    contract: str


class ContractUpdate(Request):
    #: The new contract as YAML; it is checked before it is stored.
    contract: Annotated[StrictStr, Field(min_length=1, max_length=MAX_CONTRACT_LENGTH)]


class ContractStored(Response):
    name: str
    #: The number of the contract version just stored.
    contract_version: int


class ColumnChange(Response):
    column: str
    test: str
    statistic: float | None
    drift: bool
    note: str = ""


class DatasetDiff(Response):
    name: str
    old: int
    new: int
    rows_old: int
    rows_new: int
    added_columns: list[str]
    removed_columns: list[str]
    #: column -> [old type, new type]
    retyped_columns: dict[str, tuple[str, str]]
    columns: list[ColumnChange]
    key: list[str] | None
    rows_added: int | None
    rows_removed: int | None
    rows_changed: int | None


# --------------------------------------------------------------------------- models


class RegisteredModel(Response):
    name: str
    description: str | None
    tags: dict[str, str]
    #: alias -> version number
    aliases: dict[str, int]
    latest_version: int | None
    created_at: int
    updated_at: int


class ModelUpdate(Request):
    description: Description | None = None
    #: Tags to add or change (others are kept).
    tags: Annotated[dict[Key, Text], Field(max_length=MAX_TAGS_PER_BATCH)] | None = None


class StoredFile(Response):
    """An uploaded file, stored under its digest (register it with ``POST .../versions``)."""

    digest: str
    size: int


class ModelFileCreate(Request):
    serialization: Literal["skops", "onnx", "pickle"]
    digest: Annotated[StrictStr, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
    size: bounded_int(0, MAX_INT)  # type: ignore[valid-type]
    #: What the flavor needs to load the file (as ``shipyard.models`` wrote it).
    meta: Annotated[dict[str, Any], Field(max_length=100)] = {}


class ModelVersionCreate(Request):
    """A new version whose native file was uploaded with ``POST /models/{name}/files``."""

    flavor: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    file: ModelFileCreate
    environment: Annotated[dict[str, Any], Field(max_length=100)] = {}
    signature: dict[str, Any] | None = None
    input_example: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = None
    description: Description | None = None
    tags: Annotated[dict[Key, Text], Field(max_length=MAX_TAGS_PER_BATCH)] = {}
    #: The run that trained it: the version records the run and the datasets it read.
    run_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None


class ModelFile(Response):
    format: str
    serialization: str
    digest: str
    size: int
    meta: dict[str, Any]


class DatasetRef(Response):
    name: str
    version: int

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, value: Any) -> Any:
        if isinstance(value, tuple | list) and len(value) == 2:
            return {"name": value[0], "version": value[1]}
        return value


class ModelVersion(Response):
    name: str
    version: int
    uri: str
    flavor: str
    status: Literal["ready", "archived"]
    description: str | None
    run_id: str | None
    signature: dict[str, Any] | None
    environment: dict[str, Any]
    input_example: list[dict[str, Any]] | None
    files: dict[str, ModelFile]
    aliases: list[str]
    tags: dict[str, str]
    #: The dataset versions the training run had read.
    datasets: list[DatasetRef]
    created_at: int
    created_by: str


AliasName = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class AliasSet(Request):
    version: bounded_int(1, MAX_INT)  # type: ignore[valid-type]


class AliasMoved(Response):
    name: str
    alias: str
    #: The version the alias points at now (None once deleted).
    version: int | None
    #: The version it pointed at before, if any.
    previous: int | None


class StatusSet(Request):
    status: Literal["ready", "archived"]


class AliasMove(Response):
    """One move of an alias, from the audit trail."""

    model_config = ConfigDict(extra="allow")

    time: int
    actor: str
    action: str
    alias: str | None = None
    version: int | None = None
    previous: int | None = None


# ----------------------------------------------------------------------- governance


class LineageEdge(Response):
    source: str
    target: str
    relation: Literal["input", "produced"]


class Lineage(Response):
    root: str
    #: node id (dataset:NAME@V, model:NAME/V, run:ID) -> a short label
    nodes: dict[str, str]
    edges: list[LineageEdge]


class AuditEvent(Response):
    seq: int
    event_id: str
    time: int
    actor: str
    action: str
    object_type: str
    object_id: str
    #: Canonical JSON of what changed.
    payload: str
    payload_digest: str
    prev_hash: str
    hash: str


class AuditReport(Response):
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


# ------------------------------------------------------------------- users, tokens
# Names and roles are checked by the client (shipyard.governance._users), whose
# messages say what a valid one looks like; the schema only bounds their size.

UserName = Annotated[StrictStr, Field(min_length=1, max_length=128)]
RoleName = Annotated[StrictStr, Field(min_length=1, max_length=16, examples=["editor"])]


class User(Response):
    name: str
    role: Literal["viewer", "editor", "admin"]
    disabled: bool
    created_at: int
    created_by: str


class UserCreate(Request):
    name: UserName
    role: RoleName


class UserUpdate(Request):
    """What to change; a field left out stays as it is."""

    role: RoleName | None = None
    disabled: StrictBool | None = None


class Token(Response):
    """A token's public record: never the token text, nor its hash."""

    token_id: str
    user: str
    name: str | None
    created_at: int
    created_by: str
    last_used_at: int | None
    expires_at: int | None
    revoked_at: int | None


class TokenCreate(Request):
    user: UserName
    #: A label, such as 'ci' or 'laptop'.
    name: Annotated[StrictStr, Field(min_length=1, max_length=NAME_LENGTH)] | None = None
    #: Stop working after this many days (left out: works until revoked).
    expires_days: StrictInt | None = None


class TokenCreated(Response):
    """A new token: ``secret`` is the text to send as ``Authorization: Bearer <secret>``.

    It is in this response only: the store keeps a hash, so it cannot be shown again.
    """

    token: Token
    secret: str
