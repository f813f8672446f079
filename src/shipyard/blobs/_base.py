"""The blob store interface: content-addressed bytes, addressed by sha256."""

from __future__ import annotations

import abc
import dataclasses
import os
from typing import BinaryIO

BlobSource = bytes | str | os.PathLike[str] | BinaryIO


@dataclasses.dataclass(frozen=True)
class BlobInfo:
    digest: str  # "sha256:<64 hex>"
    size: int


class BlobStore(abc.ABC):
    """Content-addressed storage. Backends: local folder, fsspec URLs (s3://...)."""

    url: str

    @abc.abstractmethod
    def put(self, source: BlobSource) -> BlobInfo:
        """Store bytes, a file (path) or a readable binary stream; return its digest.

        Streams and files are read in chunks, never whole. The blob becomes
        visible only once complete (temp name, fsync, rename); storing the same
        content twice keeps one copy.
        """

    @abc.abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """A readable binary stream of the blob; raises NotFound."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def size(self, digest: str) -> int: ...

    @abc.abstractmethod
    def delete(self, digest: str) -> None: ...

    def get(self, digest: str) -> bytes:
        with self.open(digest) as fh:
            return fh.read()

    def verify(self, digest: str) -> None:
        """Re-hash the stored bytes; raise IntegrityError if they do not match."""
        ...

    def download(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the blob to ``dest`` atomically, verifying its digest on the way."""
        ...
