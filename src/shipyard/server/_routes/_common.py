"""What every router shares: roles, paging, uploads read in chunks, streamed downloads.

JSON request bodies are capped before they are read by the app's
``_security.BodyLimitMiddleware``; upload routes (``UPLOAD_BODY`` marks them)
are left alone by it and bound and check what they read with :class:`Upload`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Annotated, Any, BinaryIO, TypeVar

import anyio.from_thread
from fastapi import Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from shipyard.blobs._base import CHUNK_SIZE, check_digest
from shipyard.errors import IntegrityError, InvalidInput
from shipyard.server._auth import Principal, Role, requires
from shipyard.server._schemas import ErrorResponse
from shipyard.tracking._client import _decode_page_token, _encode_page_token

T = TypeVar("T")

#: The largest upload (artifact or dataset file), in bytes.
MAX_UPLOAD_BYTES = 64 << 30
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
DIGEST_HEADER = "X-Shipyard-Digest"

# ``principal: Viewer`` is ``principal: Principal = Depends(requires(Role.viewer))``.
Viewer = Annotated[Principal, Depends(requires(Role.viewer))]
Editor = Annotated[Principal, Depends(requires(Role.editor))]
Admin = Annotated[Principal, Depends(requires(Role.admin))]

MaxResults = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page (1 to 1,000).")
]
PageToken = Annotated[
    str | None,
    Query(max_length=1000, description="The next_page_token of the previous page."),
]


def page(items: Sequence[T], max_results: int, page_token: str | None) -> dict[str, Any]:
    """One page of a list held in memory, with an opaque offset token for the next."""
    offset = _decode_page_token(page_token)
    end = offset + max_results
    return {
        "items": list(items[offset:end]),
        "next_page_token": _encode_page_token(end) if end < len(items) else None,
    }


def page_offset(page_token: str | None) -> int:
    return _decode_page_token(page_token)


def next_token(offset: int, max_results: int, more: bool) -> str | None:
    return _encode_page_token(offset + max_results) if more else None


_ERRORS = {
    400: "Bad input: a malformed name, filter, path, page token or file.",
    401: "No valid token (only when the server runs with auth).",
    403: "The caller's role is not enough.",
    404: "The named object does not exist.",
    409: "The change contradicts what is stored (a param logged again with another value, a "
    "name taken).",
    413: "The JSON body is over the server's limit.",
    422: "The request does not match the schema, or uploaded bytes fail their digest.",
    503: "The metadata store cannot be reached.",
}
#: Every route may answer with these, each with the same JSON error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text} for status, text in _ERRORS.items()
}

# ------------------------------------------------------------------ request bodies


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidInput(f"Bad Content-Length header {value!r}: expected a whole number.")
    return int(value)


def expected_digest(request: Request) -> str | None:
    value = request.headers.get(DIGEST_HEADER)
    if value is None:
        return None
    try:
        return check_digest(value.strip().lower())
    except InvalidInput:
        raise InvalidInput(
            f"Bad {DIGEST_HEADER} header {value!r}: expected 'sha256:' and 64 hex digits.",
            hint="Send the sha256 of the body as sha256:<hex>, or leave the header out.",
        ) from None


class Upload:
    """A request body read in blocks from a worker thread, checked as it ends.

    Iterate it (in a thread, e.g. inside ``run_in_threadpool``) to get the
    body's blocks. After the last block it raises, instead of ending, if fewer
    or more bytes came than ``Content-Length`` declared or if the bytes do not
    hash to the ``X-Shipyard-Digest`` header; a consumer that writes the blocks
    inside a blob writer therefore never publishes a bad upload.
    """

    def __init__(self, request: Request) -> None:
        self.declared = _content_length(request)
        if self.declared is not None and self.declared > MAX_UPLOAD_BYTES:
            raise InvalidInput(
                f"The upload has {self.declared:,} bytes; the limit is {MAX_UPLOAD_BYTES:,}."
            )
        self.digest = expected_digest(request)
        self._stream: AsyncIterator[bytes] = request.stream()
        self.size = 0

    async def _next_block(self) -> bytes:
        """Up to CHUNK_SIZE bytes, gathered from the ASGI messages (b"" at the end)."""
        block = bytearray()
        try:
            while len(block) < CHUNK_SIZE:
                chunk = await self._stream.__anext__()
                block += chunk
        except StopAsyncIteration:
            pass
        except ClientDisconnect:
            raise InvalidInput(
                f"The upload was cut off after {self.size + len(block):,} bytes.",
                hint="Send it again.",
            ) from None
        return bytes(block)

    def __iter__(self) -> Iterator[bytes]:
        sha = hashlib.sha256()
        while block := anyio.from_thread.run(self._next_block):
            self.size += len(block)
            if self.size > (self.declared if self.declared is not None else MAX_UPLOAD_BYTES):
                raise InvalidInput(
                    f"The upload is longer than {'its Content-Length' if self.declared is not None else 'the limit'}"
                    f" ({self.declared if self.declared is not None else MAX_UPLOAD_BYTES:,} bytes)."
                )
            sha.update(block)
            yield block
        if self.declared is not None and self.size != self.declared:
            raise InvalidInput(
                f"The upload is truncated: {self.size:,} of {self.declared:,} bytes arrived "
                "(Content-Length); nothing was stored.",
                hint="Send it again.",
            )
        actual = f"sha256:{sha.hexdigest()}"
        if self.digest is not None and actual != self.digest:
            raise IntegrityError(
                f"The upload's bytes hash to {actual}, not to {self.digest} "
                f"({DIGEST_HEADER}); nothing was stored.",
                hint="Send it again; if it keeps failing, check the file on the sending side.",
            )


#: An upload body in the OpenAPI spec: raw bytes, any media type.
UPLOAD_BODY: dict[str, Any] = {
    "x-shipyard-upload": True,
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}


# ------------------------------------------------------------------------ downloads


def stream_blob(
    opened: BinaryIO, digest: str, size: int, media_type: str, filename: str | None = None
) -> StreamingResponse:
    """Stream a blob with its length and digest; a blob that fails its digest is cut short.

    The last block is held back until every byte has been hashed: if the
    stored bytes do not match ``digest`` the response ends early, so the
    client sees fewer bytes than Content-Length and never a complete bad file.
    """

    def blocks() -> Iterator[bytes]:
        sha = hashlib.sha256()
        with opened:
            held = b""
            while chunk := opened.read(CHUNK_SIZE):
                if held:
                    yield held
                sha.update(chunk)
                held = chunk
            if f"sha256:{sha.hexdigest()}" != digest:
                raise IntegrityError(f"Blob {digest} is corrupt; the download was cut short.")
            if held:
                yield held

    headers = {"Content-Length": str(size), DIGEST_HEADER: digest}
    if filename is not None:
        headers["Content-Disposition"] = f'attachment; filename="{_safe_filename(filename)}"'
    return StreamingResponse(blocks(), media_type=media_type, headers=headers)


def _safe_filename(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in base)


def download_responses(media_type: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a streamed download."""
    return {
        200: {
            "description": "The bytes, streamed.",
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "Content-Length": {"schema": {"type": "integer"}},
                DIGEST_HEADER: {
                    "description": "sha256 of the body; check it on arrival.",
                    "schema": {"type": "string"},
                },
            },
        }
    }
