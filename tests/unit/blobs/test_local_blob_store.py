"""What only the local backend promises: temp files, fsync order, confined paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.blobs._base import blob_key
from shipyard.blobs._local import LocalBlobStore
from shipyard.errors import UnsafePath


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def test_put_leaves_no_temp_file(store: LocalBlobStore) -> None:
    store.put(b"one")
    store.put(b"one")  # dedup drops its temp file too
    with pytest.raises(OSError, match="boom"):
        store.put(_FailingStream())
    assert list((store.root / "tmp").iterdir()) == []


class _FailingStream:
    def read(self, size: int = -1) -> bytes:
        raise OSError("boom")


def test_put_writes_in_tmp_then_fsyncs_before_the_rename(
    store: LocalBlobStore, fs_events: list[tuple[str, str]]
) -> None:
    events = fs_events
    info = store.put(b"durable")
    final = store.root.resolve() / blob_key(info.digest)
    tmp_dir = store.root.resolve() / "tmp"

    renames = [detail for kind, detail in events if kind == "replace"]
    assert len(renames) == 1
    temp, _, target = renames[0].partition(" -> ")
    assert Path(temp).parent == tmp_dir
    assert target == str(final)
    at = events.index(("replace", renames[0]))
    assert ("fsync", temp) in events[:at]  # the bytes are on disk before the name points at them
    assert events[at + 1] == ("fsync", str(final.parent))  # and the new name is on disk too


def test_a_symlink_out_of_the_root_is_refused(store: LocalBlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir()
    (store.root / "sha256").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="outside"):
        store.put(b"escape")
    assert list(outside.iterdir()) == []
    with pytest.raises(UnsafePath):
        store.exists("sha256:" + "0" * 64)


def test_the_root_is_fixed_when_the_store_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalBlobStore("blobs")
    monkeypatch.chdir("/")
    info = store.put(b"here")
    assert (tmp_path / "blobs" / blob_key(info.digest)).read_bytes() == b"here"
    assert store.url == (tmp_path / "blobs").as_uri()
