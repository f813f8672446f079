"""Users and API tokens, for admins only: what ``shipyard users``/``shipyard tokens`` do remotely.

A token's text is in the response that creates it and nowhere else: the store
keeps a hash of its secret, and no route returns a hash. The first admin is
created on the server's machine, straight in the store (``shipyard users
create NAME --role admin`` with ``SHIPYARD_URI`` naming the store): with
``--auth`` nobody can call these routes before one exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from shipyard.errors import InvalidInput
from shipyard.server import _schemas as s
from shipyard.server._routes._common import (
    ERROR_RESPONSES,
    Admin,
    MaxResults,
    PageToken,
    page,
)

router = APIRouter(tags=["users"], responses=ERROR_RESPONSES)

UserName = Annotated[str, Path(max_length=128, description="The user's name.", examples=["ann"])]
TokenId = Annotated[
    str,
    Path(max_length=64, description="The token's id: the 12 hex digits after 'sy_'."),
]


@router.get("/users", response_model=s.Page[s.User])
def list_users(
    request: Request,
    principal: Admin,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Every user, by name, with their role and whether they are disabled."""
    return page(principal.client(request).list_users(), max_results, page_token)


@router.post("/users", response_model=s.User, status_code=status.HTTP_201_CREATED)
def create_user(body: s.UserCreate, request: Request, principal: Admin) -> object:
    """Add a user: viewer reads; editor also writes runs, datasets and models; admin also
    manages users and tokens."""
    return principal.client(request).create_user(body.name, body.role)


@router.get("/users/{name}", response_model=s.User)
def get_user(name: UserName, request: Request, principal: Admin) -> object:
    return principal.client(request).get_user(name)


@router.patch("/users/{name}", response_model=s.User)
def update_user(name: UserName, body: s.UserUpdate, request: Request, principal: Admin) -> object:
    """Change a user's role, disable or enable them, or both; it applies from their next
    request on, with every token they hold."""
    if body.role is None and body.disabled is None:
        raise InvalidInput(
            "Nothing to change: the body names neither 'role' nor 'disabled'.",
            hint='Send e.g. {"role": "editor"} or {"disabled": true}.',
        )
    client = principal.client(request)
    user = None
    if body.role is not None:
        user = client.set_user_role(name, body.role)
    if body.disabled is not None:
        user = client.disable_user(name, body.disabled)
    return user


@router.get("/tokens", response_model=s.Page[s.Token])
def list_tokens(
    request: Request,
    principal: Admin,
    user: Annotated[str | None, Query(max_length=128, description="Only this user's.")] = None,
    max_results: MaxResults = 100,
    page_token: PageToken = None,
) -> object:
    """Token records, oldest first: id, user, label, times. Never a token or its hash."""
    return page(principal.client(request).list_tokens(user), max_results, page_token)


@router.post("/tokens", response_model=s.TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(body: s.TokenCreate, request: Request, principal: Admin) -> object:
    """A new token for ``user``; ``secret`` is the token to send, shown this once."""
    token, secret = principal.client(request).create_token(
        body.user, body.name, expires_days=body.expires_days
    )
    return s.TokenCreated(token=s.Token.model_validate(token), secret=secret)


@router.post("/tokens/{token_id}/revoke", response_model=s.Token)
def revoke_token(token_id: TokenId, request: Request, principal: Admin) -> object:
    """Revoke a token: every server refuses it from the next request on. Revoking it
    again changes nothing."""
    return principal.client(request).revoke_token(token_id)
