"""Blobs as files in a local folder.

Layout::

    <root>/sha256/ab/cd/<64 hex>   a complete blob, named by its digest
    <root>/tmp/                    blobs being written (same filesystem as
                                   the blobs, so the final rename is atomic)

A crash while writing leaves at most a file in ``tmp/``, never a partial
blob under its final name.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shipyard._files import confine, create_temp, fsync_dir, make_dirs
from shipyard.blobs._base import (
    BlobInfo,
    BlobSource,
    BlobStore,
    BlobWriter,
    blob_key,
    copy_hashing,
)
from shipyard.errors import ConfigError, NotFound

__all__ = ["LocalBlobStore"]


class LocalBlobStore(BlobStore):
    """Content-addressed blobs under a local folder; every path is confined to it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Absolute now, so a later chdir does not move the store.
        self.root = Path(root).absolute()
        self.url = self.root.as_uri()

    @classmethod
    def from_url(cls, url: str, *, s3_endpoint_url: str = "") -> LocalBlobStore:
        """Open a folder given as a plain path or a ``file://`` URL.

        ``s3_endpoint_url`` does not apply to a folder and is ignored.
        """
        if "://" not in url:
            return cls(url)
        parts = urllib.parse.urlsplit(url)
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise ConfigError(
                f"Cannot use {url!r} as a blob store folder: a file URL names a local "
                f"absolute path, with no host, query or fragment.",
                hint="Write it as file:///absolute/path, or give a plain folder path.",
            )
        return cls(urllib.parse.unquote(parts.path))

    def _path(self, digest: str) -> Path:
        return confine(self.root, blob_key(digest))

    def put(self, source: BlobSource) -> BlobInfo:
        fd, tmp = create_temp(confine(self.root, "tmp"), "blob")
        try:
            with os.fdopen(fd, "wb") as out:
                info = copy_hashing(source, out)
                out.flush()
                os.fsync(out.fileno())
            self._publish(tmp, info)
        finally:
            tmp.unlink(missing_ok=True)  # a no-op once the temp file is renamed into place
        return info

    @contextlib.contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        """Write straight into ``tmp/``; fsync and rename into place on success."""
        fd, tmp = create_temp(confine(self.root, "tmp"), "blob")
        try:
            with os.fdopen(fd, "wb") as out:
                sink = BlobWriter(out)
                yield sink
                info = sink._finish()
                os.fsync(out.fileno())
            self._publish(tmp, info)
        finally:
            tmp.unlink(missing_ok=True)

    def _publish(self, tmp: Path, info: BlobInfo) -> None:
        """Rename a complete, fsynced temp file to the blob's final name."""
        final = self._path(info.digest)
        try:
            if final.stat().st_size == info.size:
                return  # stored already: keep one copy, drop the temp file
        except FileNotFoundError:
            pass
        # Absent, or a damaged copy of another size: put the good bytes in its place.
        make_dirs(final.parent)
        os.replace(tmp, final)
        fsync_dir(final.parent)

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._path(digest), "rb")
        except FileNotFoundError as exc:
            raise NotFound("blob", digest) from exc

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound("blob", digest) from exc

    def delete(self, digest: str) -> None:
        try:
            self._path(digest).unlink()
        except FileNotFoundError as exc:
            raise NotFound("blob", digest) from exc
