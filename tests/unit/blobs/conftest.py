"""Fixtures for the blob store contract suite: one fresh store per test and backend.

The ``s3`` store talks to moto's standalone S3 server on 127.0.0.1 (started
once per session) through the real s3fs/aiobotocore stack, with fake
credentials set for the test only and a unique key prefix per test.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shipyard.blobs import BlobStore, open_blob_store
from shipyard.blobs._base import blob_key
from shipyard.blobs._fsspec import FsspecBlobStore
from shipyard.blobs._local import LocalBlobStore

BUCKET = "shipyard-test"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Keep the developer's own AWS setup and the EC2 metadata service out of the tests.
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server holding the bucket ``BUCKET``."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=["local", "s3", "memory"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A fresh, empty blob store of each backend."""
    prefix = f"t-{uuid.uuid4().hex}"
    if request.param == "local":
        return open_blob_store(str(tmp_path / "blobs"))
    if request.param == "memory":
        return open_blob_store(f"memory://{BUCKET}/{prefix}")
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("fake_aws")
    return open_blob_store(f"s3://{BUCKET}/{prefix}", s3_endpoint_url=endpoint)


@pytest.fixture
def stored_keys(blob_store: BlobStore) -> Callable[[], list[str]]:
    """A function listing the relative path of every file under ``sha256/`` in the store."""
    return lambda: _stored_keys(blob_store)


@pytest.fixture
def rewrite_blob(blob_store: BlobStore) -> Callable[[str, Callable[[bytes], bytes]], None]:
    """A function replacing a stored blob's bytes behind the store's back, as damage would."""
    return lambda digest, change: _rewrite_blob(blob_store, digest, change)


def _stored_keys(store: BlobStore) -> list[str]:
    if isinstance(store, LocalBlobStore):
        folder = store.root / "sha256"
        files = folder.rglob("*") if folder.exists() else []
        return sorted(p.relative_to(store.root).as_posix() for p in files if p.is_file())
    assert isinstance(store, FsspecBlobStore)
    store.fs.invalidate_cache()
    keys = store.fs.find(f"{store.prefix}/sha256")
    return sorted(key.removeprefix(f"{store.prefix}/") for key in keys)


def _rewrite_blob(store: BlobStore, digest: str, change: Callable[[bytes], bytes]) -> None:
    if isinstance(store, LocalBlobStore):
        path = store.root / blob_key(digest)
        path.write_bytes(change(path.read_bytes()))
        return
    assert isinstance(store, FsspecBlobStore)
    key = f"{store.prefix}/{blob_key(digest)}"
    store.fs.pipe_file(key, change(store.fs.cat_file(key)))
    store.fs.invalidate_cache()
