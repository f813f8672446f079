"""open_blob_store: which URL opens which backend, and what it refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.blobs import open_blob_store
from shipyard.blobs._fsspec import FsspecBlobStore
from shipyard.blobs._local import LocalBlobStore
from shipyard.errors import ConfigError


def test_a_plain_path_opens_a_local_store(tmp_path: Path) -> None:
    store = open_blob_store(str(tmp_path / "blobs"))
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "blobs"


@pytest.mark.parametrize("authority", ["", "localhost"])
def test_a_file_url_opens_a_local_store(tmp_path: Path, authority: str) -> None:
    folder = tmp_path / "with space"
    store = open_blob_store(f"file://{authority}{folder.as_uri().removeprefix('file://')}")
    assert isinstance(store, LocalBlobStore)
    assert store.root == folder


@pytest.mark.parametrize(
    "url", ["file://otherhost/blobs", "file://relative/blobs", "file:///blobs?x=1", "file:///b#f"]
)
def test_a_file_url_must_name_a_local_absolute_path(url: str) -> None:
    with pytest.raises(ConfigError, match="file:///absolute/path"):
        open_blob_store(url)


def test_an_s3_url_opens_an_fsspec_store_with_the_endpoint() -> None:
    store = open_blob_store("s3://bucket/some/prefix/", s3_endpoint_url="http://127.0.0.1:9")
    assert isinstance(store, FsspecBlobStore)
    assert store.prefix == "bucket/some/prefix"
    assert store.fs.client_kwargs == {"endpoint_url": "http://127.0.0.1:9"}


def test_without_an_endpoint_s3_means_aws() -> None:
    store = open_blob_store("s3://bucket")
    assert isinstance(store, FsspecBlobStore)
    assert "endpoint_url" not in store.fs.client_kwargs


def test_the_s3_endpoint_does_not_apply_to_other_protocols() -> None:
    store = open_blob_store("memory://bucket/x", s3_endpoint_url="http://127.0.0.1:9")
    assert isinstance(store, FsspecBlobStore)
    assert store.prefix == "/bucket/x"


@pytest.mark.parametrize("url", ["s3://", "s3:///"])
def test_an_s3_url_needs_a_bucket(url: str) -> None:
    with pytest.raises(ConfigError, match="names no bucket"):
        open_blob_store(url)


@pytest.mark.parametrize("url", ["ftp://host/blobs", "HTTPX://x", "nope://"])
def test_an_unknown_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_blob_store(url)
    message = str(caught.value)
    assert repr(url.split("://")[0].lower()) in message
    for supported in ("a folder path", "file://", "s3://"):
        assert supported in message


@pytest.mark.parametrize("url", ["", "   ", None])
def test_an_empty_url_is_refused(url: object) -> None:
    with pytest.raises(ConfigError, match="Expected a blob store URL"):
        open_blob_store(url)  # type: ignore[arg-type]


def test_importing_blobs_loads_no_fsspec_or_cloud_sdk() -> None:
    code = (
        "import sys, shipyard.blobs; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'fsspec', 's3fs', 'boto3', 'botocore', 'aiobotocore'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
