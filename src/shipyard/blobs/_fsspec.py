"""Blobs in an object store or other filesystem reached through fsspec.

``s3://bucket/prefix`` keeps blobs at ``bucket/prefix/sha256/ab/cd/<64 hex>``,
the same layout as a local folder. This module imports fsspec, and fsspec the
driver (s3fs, gcsfs, ...), only when a store is opened.

A blob is uploaded under its final key only after it has been hashed, as one
upload: object stores (S3, GCS, Azure) make an object, even a multi-part one,
visible only once it is complete, so readers never see a partial blob.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import TYPE_CHECKING, Any, BinaryIO

from shipyard.blobs._base import BlobInfo, BlobSource, BlobStore, blob_key, copy_hashing
from shipyard.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["FsspecBlobStore"]

_S3_PROTOCOLS = ("s3", "s3a")


class FsspecBlobStore(BlobStore):
    """Content-addressed blobs under a prefix of an fsspec filesystem."""

    def __init__(self, fs: AbstractFileSystem, prefix: str, url: str) -> None:
        self.fs = fs
        self.prefix = prefix.rstrip("/")
        self.url = url

    @classmethod
    def from_url(cls, url: str, *, s3_endpoint_url: str = "") -> FsspecBlobStore:
        """Open ``url``; ``s3_endpoint_url`` (MinIO, Ceph, moto) applies to ``s3://`` only."""
        import fsspec.core  # here, not at the top: see the module docstring

        options: dict[str, Any] = {}
        if s3_endpoint_url and url.split("://", 1)[0].lower() in _S3_PROTOCOLS:
            options["client_kwargs"] = {"endpoint_url": s3_endpoint_url}
        try:
            fs, prefix = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise ConfigError(
                f"The blob store {url!r} needs a driver that is not installed: {exc}",
                hint="For s3:// URLs install the extra: pip install 'shipyard[s3]'.",
            ) from exc
        if not prefix.strip("/"):
            raise ConfigError(
                f"The blob store URL {url!r} names no bucket or folder.",
                hint="Write it as s3://bucket or s3://bucket/prefix.",
            )
        return cls(fs, prefix, url)

    def _key(self, digest: str) -> str:
        return f"{self.prefix}/{blob_key(digest)}"

    def put(self, source: BlobSource) -> BlobInfo:
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            info = BlobInfo(f"sha256:{hashlib.sha256(data).hexdigest()}", len(data))
            if not self._stored(info):
                self.fs.pipe_file(self._key(info.digest), data)
            return info
        # Spool to a local file while hashing: the key is the digest, known only at the end.
        fd, spool = tempfile.mkstemp(prefix="shipyard-blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                info = copy_hashing(source, out)
            if not self._stored(info):
                self.fs.put_file(spool, self._key(info.digest))
        finally:
            os.unlink(spool)
        return info

    def _stored(self, info: BlobInfo) -> bool:
        """Whether the blob is stored whole (a copy of another size is damaged: replace it)."""
        try:
            return self.fs.size(self._key(info.digest)) == info.size
        except FileNotFoundError:
            return False

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.fs.open(self._key(digest), "rb")
        except FileNotFoundError as exc:
            raise NotFound("blob", digest) from exc

    def exists(self, digest: str) -> bool:
        return self.fs.isfile(self._key(digest))

    def size(self, digest: str) -> int:
        try:
            return self.fs.size(self._key(digest))
        except FileNotFoundError as exc:
            raise NotFound("blob", digest) from exc

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        # Deleting a missing S3 key succeeds silently; say it was not there instead.
        if not self.fs.isfile(key):
            raise NotFound("blob", digest)
        self.fs.rm_file(key)
