"""Deployments (see shipyard.serving): what a serving process answers for, kept in the store.

    client.create_deployment("credit", "models:/credit@champion",
                             canary="models:/credit@challenger", canary_percent=10)
    client.update_deployment("credit", canary=None)   # the canary (and its share) removed

The arguments are checked here, for the embedded and the remote client alike;
that each URI resolves, and what only the whole definition shows, is checked
by the store in the writing transaction.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from shipyard.store import Store
    from shipyard.store.deployments import Deployment

MAX_DESCRIPTION_LENGTH = 64_000


class Unchanged(enum.Enum):
    """An ``update_deployment`` argument left out (None there means "remove")."""

    KEEP = "keep"


KEEP = Unchanged.KEEP


def deployment_name(name: Any) -> str:
    """A deployment name follows the model name rules (it names a folder of the log too)."""
    from shipyard.models import _uri

    try:
        return _uri.check_name(name)
    except InvalidInput:
        raise InvalidInput(
            f"A deployment name is 1 to 128 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit, without '..'; got {name!r}.",
            hint="Use a name such as 'credit' or 'credit-eu'.",
        ) from None


def model_uri(role: str, uri: Any) -> str:
    """``uri`` as a normalised ``models:/`` URI, or InvalidInput naming the role it plays."""
    from shipyard.models import _uri

    try:
        return str(_uri.parse(uri))
    except InvalidInput as exc:
        raise InvalidInput(
            f"The {role} of a deployment must be a model URI: {exc.message}",
            hint=exc.hint,
        ) from None


def description(text: Any) -> str | None:
    if text is not None and (not isinstance(text, str) or len(text) > MAX_DESCRIPTION_LENGTH):
        raise InvalidInput(
            f"A description is text of at most {MAX_DESCRIPTION_LENGTH:,} characters; got "
            f"{type(text).__name__}{f' of {len(text):,}' if isinstance(text, str) else ''}.",
        )
    return text


def creation(
    name: Any,
    model: Any,
    canary: Any,
    canary_percent: Any,
    shadow: Any,
    text: Any,
) -> dict[str, Any]:
    """The checked fields of a new deployment."""
    from shipyard.store import deployments as deployments_repo

    return {
        "name": deployment_name(name),
        "model_uri": model_uri("model", model),
        "canary_uri": None if canary is None else model_uri("canary", canary),
        "canary_percent": (
            None if canary_percent is None else deployments_repo.check_percent(canary_percent)
        ),
        "shadow_uri": None if shadow is None else model_uri("shadow", shadow),
        "description": description(text),
    }


def changes(model: Any, canary: Any, canary_percent: Any, shadow: Any, text: Any) -> dict[str, Any]:
    """The checked fields an update gives (KEEP left out; None removes an optional one)."""
    from shipyard.store import deployments as deployments_repo

    found: dict[str, Any] = {}
    if model is not KEEP:
        if model is None:
            raise InvalidInput(
                "A deployment always serves a model; model=None cannot remove it.",
                hint="Pass another model URI, or delete the deployment.",
            )
        found["model_uri"] = model_uri("model", model)
    if canary is not KEEP:
        found["canary_uri"] = None if canary is None else model_uri("canary", canary)
    if canary_percent is not KEEP:
        found["canary_percent"] = (
            None if canary_percent is None else deployments_repo.check_percent(canary_percent)
        )
    if shadow is not KEEP:
        found["shadow_uri"] = None if shadow is None else model_uri("shadow", shadow)
    if text is not KEEP:
        found["description"] = description(text)
    return found


def resolve_uri(conn: Connection, uri: str) -> None:
    """NotFound unless ``uri`` names a version that exists (an alias that is set)."""
    from shipyard.models import _uri
    from shipyard.store import models as models_repo

    ref = _uri.parse(uri)
    if ref.version is None:
        models_repo.resolve_alias(conn, ref.name, ref.alias or "")
    else:
        models_repo.get_version(conn, ref.name, ref.version)


class DeploymentsMixin:
    """Deployments (see shipyard.serving): what a serving process answers for, kept in the store."""

    if TYPE_CHECKING:
        store: Store
        actor: str

    def create_deployment(
        self,
        name: str,
        model: str,
        *,
        canary: str | None = None,
        canary_percent: float | None = None,
        shadow: str | None = None,
        description: str | None = None,
    ) -> Deployment:
        """Store a deployment serving ``model`` (``models:/NAME@ALIAS`` follows the alias);
        ``canary`` answers ``canary_percent`` % of the requests, ``shadow`` predicts on every
        request without answering. Each URI must resolve now."""
        from shipyard.store import deployments as deployments_repo

        fields = creation(name, model, canary, canary_percent, shadow, description)
        with self.store.write(self.actor) as tx:
            for key in ("model_uri", "canary_uri", "shadow_uri"):
                if fields[key] is not None:
                    resolve_uri(tx.conn, fields[key])
            return deployments_repo.create(tx, fields.pop("name"), **fields)

    def get_deployment(self, name: str) -> Deployment:
        from shipyard.store import deployments as deployments_repo

        checked = deployment_name(name)
        with self.store.read() as conn:
            return deployments_repo.get(conn, checked)

    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""
        from shipyard.store import deployments as deployments_repo

        with self.store.read() as conn:
            return deployments_repo.list_all(conn)

    def update_deployment(
        self,
        name: str,
        *,
        model: str | Unchanged = KEEP,
        canary: str | Unchanged | None = KEEP,
        canary_percent: float | Unchanged | None = KEEP,
        shadow: str | Unchanged | None = KEEP,
        description: str | Unchanged | None = KEEP,
    ) -> Deployment:
        """Change what a deployment serves; what is left out stays. ``canary=None`` removes the
        canary and its share, ``shadow=None`` the shadow. Running servers pick it up within
        seconds."""
        from shipyard.store import deployments as deployments_repo

        checked = deployment_name(name)
        found = changes(model, canary, canary_percent, shadow, description)
        with self.store.write(self.actor) as tx:
            for key in ("model_uri", "canary_uri", "shadow_uri"):
                if found.get(key) is not None:
                    resolve_uri(tx.conn, found[key])
            return deployments_repo.update(tx, checked, found)

    def delete_deployment(self, name: str) -> Deployment:
        """Remove a deployment's definition (its prediction log is kept); returns what it was."""
        from shipyard.store import deployments as deployments_repo

        checked = deployment_name(name)
        with self.store.write(self.actor) as tx:
            return deployments_repo.delete(tx, checked)
