"""The blob store interface: content-addressed bytes, addressed by sha256.

A digest is ``"sha256:"`` followed by 64 lowercase hex digits, the sha256 of
the blob's bytes. Every backend lays blobs out as ``sha256/ab/cd/<64 hex>``
under its root (the first two pairs of hex digits fan the blobs out over
65,536 folders), so a store can be copied between backends file for file.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from shipyard._files import atomic_open
from shipyard.errors import IntegrityError, InvalidInput

__all__ = [
    "CHUNK_SIZE",
    "BlobInfo",
    "BlobSource",
    "BlobStore",
    "BlobWriter",
    "blob_key",
    "check_digest",
    "copy_hashing",
    "integrity_error",
    "source_chunks",
]

#: Bytes, a file path, or a readable binary stream.
BlobSource = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO

#: Size of each read and hash step: large enough that hashlib, which releases
#: the GIL above 2 KiB, runs at full speed; small enough to stay in cache.
CHUNK_SIZE = 1 << 20

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    """What :meth:`BlobStore.put` stored: its digest and its size in bytes."""

    digest: str  # "sha256:<64 lowercase hex>"
    size: int


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is ``"sha256:<64 lowercase hex>"``; else raise InvalidInput."""
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        return digest
    raise InvalidInput(
        f"Expected a blob digest like 'sha256:' followed by 64 lowercase hex digits, "
        f"got {digest!r}.",
        hint="Use the digest that put() returned, e.g. BlobInfo.digest.",
    )


def blob_key(digest: str) -> str:
    """The relative path of a blob in every backend: ``sha256/ab/cd/<hex>``."""
    hex_ = check_digest(digest).removeprefix("sha256:")
    return f"sha256/{hex_[:2]}/{hex_[2:4]}/{hex_}"


def read_chunks(stream: BinaryIO) -> Iterator[bytes | memoryview]:
    """Yield a binary stream's bytes in chunks of at most :data:`CHUNK_SIZE`.

    Uses ``readinto`` on one reused buffer when the stream has it (no copy per
    chunk), else ``read(CHUNK_SIZE)``. A yielded memoryview is only valid until
    the next one is requested: hash it and write it, do not keep it.
    """
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := _checked(stream.read(CHUNK_SIZE)):
            yield chunk
        return
    view = memoryview(bytearray(CHUNK_SIZE))
    while count := _checked(readinto(view)):
        yield view[:count]


def _checked(result: Any) -> Any:
    """Refuse text streams and non-blocking streams instead of storing a truncated blob."""
    if result is None:
        raise InvalidInput(
            "The stream returned no data before its end (a non-blocking stream?).",
            hint="Pass a blocking binary stream, e.g. a file opened with open(path, 'rb').",
        )
    if isinstance(result, str):
        raise InvalidInput(
            "The stream returned text, not bytes.",
            hint="Open it in binary mode, e.g. open(path, 'rb'), or pass the encoded bytes.",
        )
    return result


@contextlib.contextmanager
def source_chunks(source: BlobSource) -> Iterator[Iterator[bytes | memoryview]]:
    """Open a :data:`BlobSource` and yield an iterator over its chunks."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source).cast("B")
        yield (view[start : start + CHUNK_SIZE] for start in range(0, len(view), CHUNK_SIZE))
    elif isinstance(source, str | os.PathLike):
        # Unbuffered: readinto goes straight from the kernel into our buffer.
        with open(source, "rb", buffering=0) as fh:
            yield read_chunks(fh)
    elif hasattr(source, "read"):
        yield read_chunks(source)
    else:
        raise InvalidInput(
            f"Expected bytes, a file path or a readable binary stream, "
            f"got {type(source).__name__}.",
            hint="Pass the bytes, the path of the file, or open(path, 'rb').",
        )


def copy_hashing(source: BlobSource, out: BinaryIO | None = None) -> BlobInfo:
    """Hash ``source`` chunk by chunk, writing each chunk to ``out`` if given."""
    sha = hashlib.sha256()
    size = 0
    with source_chunks(source) as chunks:
        for chunk in chunks:
            sha.update(chunk)
            if out is not None:
                out.write(chunk)
            size += len(chunk)
    return BlobInfo(f"sha256:{sha.hexdigest()}", size)


def integrity_error(expected: str, actual: str) -> IntegrityError:
    """The error for stored bytes that do not hash to their digest."""
    return IntegrityError(
        f"Blob {expected} is corrupt: its stored bytes hash to {actual}.",
        hint="Delete it and put() the original bytes again, or restore it from a backup.",
    )


class BlobWriter(io.RawIOBase):
    """A write-only binary file that hashes what passes through it.

    Given to code that produces a blob's bytes itself (a Parquet writer, say),
    so they are hashed and stored in one pass. ``info`` is known once the
    writer's context has exited.
    """

    def __init__(self, out: BinaryIO) -> None:
        super().__init__()
        self._out = out
        self._sha = hashlib.sha256()
        self._size = 0
        self.info: BlobInfo | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        self._sha.update(view)
        self._out.write(view)
        self._size += len(view)
        return len(view)

    def tell(self) -> int:
        return self._size

    def close(self) -> None:
        # The producer may close its sink; the store finishes the blob itself.
        super().close()

    def _finish(self) -> BlobInfo:
        self._out.flush()
        self.info = BlobInfo(f"sha256:{self._sha.hexdigest()}", self._size)
        return self.info


class BlobStore(abc.ABC):
    """Content-addressed storage. Backends: local folder, fsspec URLs (``s3://...``).

    Every method that takes a digest checks its form first (InvalidInput) and
    raises NotFound("blob", digest) when no such blob is stored.
    """

    url: str

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, *, s3_endpoint_url: str = "") -> BlobStore:
        """Open the store at ``url``; each backend takes the settings that apply to it."""

    @abc.abstractmethod
    def put(self, source: BlobSource) -> BlobInfo:
        """Store bytes, a file (path) or a readable binary stream; return its digest.

        Streams and files are read in chunks, never whole. The blob becomes
        visible only once complete (temp name, fsync, rename); storing the same
        content twice keeps one copy.
        """

    @abc.abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A readable binary stream of the blob, not verified; raises NotFound."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""

    @abc.abstractmethod
    def size(self, digest: str) -> int:
        """The size of the stored blob in bytes; raises NotFound."""

    @abc.abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the blob; raises NotFound if it is not stored."""

    @contextlib.contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        """A file to write a new blob into; stored when the block exits without error.

        This default spools to a local temporary file and then puts it;
        backends that can publish a finished file in place override it.
        """
        import tempfile

        with tempfile.TemporaryFile() as spool:
            sink = BlobWriter(spool)
            yield sink
            expected = sink._finish()
            spool.seek(0)
            stored = self.put(spool)
            if stored != expected:  # the spool changed under us: never store it unnoticed
                raise integrity_error(expected.digest, stored.digest)

    def get(self, digest: str) -> bytes:
        """The blob's bytes, verified against its digest (IntegrityError if not)."""
        with self.open(digest) as fh:
            data = fh.read()
        actual = f"sha256:{hashlib.sha256(data).hexdigest()}"
        if actual != digest:
            raise integrity_error(digest, actual)
        return data

    def verify(self, digest: str) -> None:
        """Re-hash the stored bytes; raise IntegrityError if they do not match."""
        with self.open(digest) as fh:
            actual = copy_hashing(fh).digest
        if actual != digest:
            raise integrity_error(digest, actual)

    def download(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the blob to ``dest`` atomically, verifying its digest on the way.

        On a mismatch IntegrityError is raised and ``dest`` is left as it was
        (not created if it did not exist).
        """
        with self.open(digest) as src, atomic_open(Path(dest)) as out:
            actual = copy_hashing(src, out).digest
            if actual != digest:
                raise integrity_error(digest, actual)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
