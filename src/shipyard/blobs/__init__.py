"""Content-addressed blob storage: ``put`` bytes, get back a sha256 digest.

    >>> store = open_blob_store("/tmp/blobs")            # or "s3://bucket/prefix"
    >>> info = store.put(b"hello")
    >>> store.get(info.digest)
    b'hello'

Backends register here by URL scheme and dotted path and are imported only
when a store of that kind is opened (importing this package loads no fsspec
or cloud SDK). A new backend is one module with a :class:`BlobStore` subclass
plus one line in ``_BACKENDS``.
"""

from __future__ import annotations

import importlib
import re

from shipyard.blobs._base import BlobInfo, BlobStore
from shipyard.errors import ConfigError

__all__ = ["BlobInfo", "BlobStore", "open_blob_store"]

#: URL scheme -> "module:Class" of its backend. A plain path means "file".
_BACKENDS: dict[str, str] = {
    "file": "shipyard.blobs._local:LocalBlobStore",
    "s3": "shipyard.blobs._fsspec:FsspecBlobStore",
    "s3a": "shipyard.blobs._fsspec:FsspecBlobStore",
    "gs": "shipyard.blobs._fsspec:FsspecBlobStore",
    "gcs": "shipyard.blobs._fsspec:FsspecBlobStore",
    "az": "shipyard.blobs._fsspec:FsspecBlobStore",
    "abfs": "shipyard.blobs._fsspec:FsspecBlobStore",
    "memory": "shipyard.blobs._fsspec:FsspecBlobStore",
}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def open_blob_store(url: str, *, s3_endpoint_url: str = "") -> BlobStore:
    """Open the blob store at ``url``: a folder path, ``file://`` or fsspec URL.

    ``s3_endpoint_url`` points ``s3://`` URLs at an S3-compatible service
    (MinIO, Ceph, moto); empty means AWS. Raises ConfigError for an empty URL
    or a scheme with no backend.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"Expected a blob store URL, got {url!r}.",
            hint="Set SHIPYARD_ARTIFACTS to a folder or an s3://bucket/prefix URL.",
        )
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "file"
    target = _BACKENDS.get(scheme)
    if target is None:
        supported = ", ".join(f"{name}://" for name in _BACKENDS)
        raise ConfigError(
            f"No blob store backend for the scheme {scheme!r} of {url!r}; "
            f"supported: a folder path, {supported}.",
            hint="Set SHIPYARD_ARTIFACTS to a folder or an s3://bucket/prefix URL.",
        )
    module_name, _, class_name = target.partition(":")
    backend: type[BlobStore] = getattr(importlib.import_module(module_name), class_name)
    return backend.from_url(url, s3_endpoint_url=s3_endpoint_url)
