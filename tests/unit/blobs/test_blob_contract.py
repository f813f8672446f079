"""The contract every blob store backend passes (fixture ``blob_store`` in conftest)."""

from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.blobs import BlobInfo, BlobStore
from shipyard.blobs._base import CHUNK_SIZE
from shipyard.errors import IntegrityError, InvalidInput, NotFound

MISSING = "sha256:" + "0" * 64
DIGEST_FORM = re.compile(r"sha256:[0-9a-f]{64}")
BAD_DIGESTS = [
    "",
    "sha256:",
    "sha256:" + "0" * 63,
    "sha256:" + "0" * 65,
    "sha256:" + "A" * 64,
    "SHA256:" + "0" * 64,
    "md5:" + "0" * 32,
    "0" * 64,
    " sha256:" + "0" * 64,
    "sha256:" + "0" * 64 + "\n",
    "sha256:../../../../etc/passwd",
    "sha256:" + "0" * 62 + "/x",
    None,
    42,
    b"sha256:" + b"0" * 64,
]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty folder for downloads, apart from the local store's own folder."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def flip_first_byte(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


class ReadOnlyStream:
    """A binary stream with only ``read``, recording the largest size asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_request = 0

    def read(self, size: int = -1) -> bytes:
        assert size is not None, "asked to read the whole stream"
        assert size >= 0, "asked to read the whole stream"
        self.largest_request = max(self.largest_request, size)
        return self._data.read(size)


class ReadIntoStream(io.RawIOBase):
    """A raw stream with ``readinto``, recording the largest buffer offered."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_request = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        self.largest_request = max(self.largest_request, len(buffer))
        return self._data.readinto(buffer)

    def readall(self) -> bytes:
        raise AssertionError("asked to read the whole stream")


# --- put and read back ------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17])
def test_put_bytes_round_trip(blob_store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    info = blob_store.put(data)
    assert info == BlobInfo(digest_of(data), size)
    assert blob_store.exists(info.digest)
    assert blob_store.size(info.digest) == size
    assert blob_store.get(info.digest) == data
    with blob_store.open(info.digest) as fh:
        assert fh.read() == data
    blob_store.verify(info.digest)


@pytest.mark.parametrize("kind", ["str", "Path"])
def test_put_file_path(blob_store: BlobStore, tmp_path: Path, kind: str) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 5)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    info = blob_store.put(str(path) if kind == "str" else path)
    assert info == BlobInfo(digest_of(data), len(data))
    assert blob_store.get(info.digest) == data


@pytest.mark.parametrize("wrap", [bytearray, memoryview, io.BytesIO])
def test_put_bytes_like_and_streams(blob_store: BlobStore, wrap: type) -> None:
    data = os.urandom(1000)
    info = blob_store.put(wrap(data))
    assert info.digest == digest_of(data)
    assert blob_store.get(info.digest) == data


def test_put_stream_from_its_current_position(blob_store: BlobStore) -> None:
    stream = io.BytesIO(b"header:payload")
    stream.seek(len(b"header:"))
    info = blob_store.put(stream)
    assert blob_store.get(info.digest) == b"payload"


@pytest.mark.parametrize("stream_type", [ReadOnlyStream, ReadIntoStream])
def test_put_reads_a_stream_in_chunks_never_whole(blob_store: BlobStore, stream_type) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(5 * CHUNK_SIZE + 3)
    stream = stream_type(data)
    info = blob_store.put(stream)
    assert info == BlobInfo(digest_of(data), len(data))
    assert 0 < stream.largest_request <= CHUNK_SIZE
    assert blob_store.get(info.digest) == data


def test_put_refuses_a_text_stream(blob_store: BlobStore, stored_keys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="binary mode"):
        blob_store.put(io.StringIO("text"))
    assert stored_keys() == []


def test_put_refuses_a_stream_that_gives_no_data_before_its_end(blob_store: BlobStore) -> None:
    class NonBlocking(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> None:  # type: ignore[no-untyped-def,override]
            return None  # what a non-blocking stream returns when no data is ready

    with pytest.raises(InvalidInput, match="non-blocking"):
        blob_store.put(NonBlocking())


@pytest.mark.parametrize("source", [42, None, ["a list"], 1.5])
def test_put_refuses_what_is_not_a_source(blob_store: BlobStore, source: object) -> None:
    with pytest.raises(InvalidInput, match="bytes, a file path or a readable binary stream"):
        blob_store.put(source)  # type: ignore[arg-type]


def test_put_of_a_missing_file_stores_nothing(
    blob_store: BlobStore,
    tmp_path: Path,
    stored_keys,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(FileNotFoundError):
        blob_store.put(tmp_path / "absent.bin")
    assert stored_keys() == []


def test_a_stream_that_fails_midway_stores_nothing(blob_store: BlobStore, stored_keys) -> None:  # type: ignore[no-untyped-def]
    class Failing(ReadOnlyStream):
        def read(self, size: int = -1) -> bytes:
            if self.largest_request:
                raise OSError("disk went away")
            return super().read(size)

    with pytest.raises(OSError, match="disk went away"):
        blob_store.put(Failing(os.urandom(3 * CHUNK_SIZE)))
    assert stored_keys() == []


def test_layout_is_sha256_fanned_out_by_two_hex_pairs(blob_store: BlobStore, stored_keys) -> None:  # type: ignore[no-untyped-def]
    info = blob_store.put(b"layout")
    hex_ = info.digest.removeprefix("sha256:")
    assert stored_keys() == [f"sha256/{hex_[:2]}/{hex_[2:4]}/{hex_}"]


# --- dedup ------------------------------------------------------------------


def test_same_content_is_stored_once(blob_store: BlobStore, stored_keys) -> None:  # type: ignore[no-untyped-def]
    first = blob_store.put(b"same bytes")
    second = blob_store.put(io.BytesIO(b"same bytes"))
    other = blob_store.put(b"other bytes")
    assert first == second
    assert other != first
    assert len(stored_keys()) == 2


def test_concurrent_puts_of_the_same_content_leave_one_good_blob(
    blob_store: BlobStore,
    stored_keys,  # type: ignore[no-untyped-def]
) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    with ThreadPoolExecutor(max_workers=4) as pool:
        infos = set(pool.map(lambda _: blob_store.put(data), range(8)))
    assert infos == {BlobInfo(digest_of(data), len(data))}
    assert len(stored_keys()) == 1
    blob_store.verify(digest_of(data))


def test_put_replaces_a_damaged_copy_of_another_size(blob_store: BlobStore, rewrite_blob) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(4096)
    info = blob_store.put(data)
    rewrite_blob(info.digest, lambda stored: stored[:100])  # truncated by a bad copy
    with pytest.raises(IntegrityError):
        blob_store.verify(info.digest)
    assert blob_store.put(data) == info
    blob_store.verify(info.digest)


# --- missing and malformed digests --------------------------------------------


@pytest.mark.parametrize("method", ["open", "size", "delete", "get", "verify"])
def test_missing_blob_is_not_found(blob_store: BlobStore, method: str) -> None:
    with pytest.raises(NotFound) as caught:
        getattr(blob_store, method)(MISSING)
    assert caught.value.kind == "blob"
    assert caught.value.key == MISSING
    assert MISSING in str(caught.value)
    assert isinstance(caught.value, LookupError)


def test_missing_blob_does_not_exist_and_is_not_downloaded(
    blob_store: BlobStore, out_dir: Path
) -> None:
    assert not blob_store.exists(MISSING)
    with pytest.raises(NotFound):
        blob_store.download(MISSING, out_dir / "out.bin")
    assert list(out_dir.iterdir()) == []


def test_delete_removes_the_blob(blob_store: BlobStore, stored_keys) -> None:  # type: ignore[no-untyped-def]
    keep = blob_store.put(b"keep")
    gone = blob_store.put(b"gone")
    blob_store.delete(gone.digest)
    assert not blob_store.exists(gone.digest)
    assert blob_store.exists(keep.digest)
    assert len(stored_keys()) == 1
    with pytest.raises(NotFound):
        blob_store.delete(gone.digest)


def _call_with_digest(store: BlobStore, method: str, digest: object, dest: Path) -> None:
    if method == "download":
        store.download(digest, dest)  # type: ignore[arg-type]
    else:
        getattr(store, method)(digest)


METHODS = ["open", "exists", "size", "delete", "get", "verify", "download"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("digest", BAD_DIGESTS, ids=repr)
def test_malformed_digest_is_invalid_input(
    blob_store: BlobStore, out_dir: Path, method: str, digest: object
) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hex digits") as caught:
        _call_with_digest(blob_store, method, digest, out_dir / "out.bin")
    assert repr(digest) in str(caught.value)
    assert not (out_dir / "out.bin").exists()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(digest=st.one_of(st.text(), st.text().map(lambda tail: "sha256:" + tail)))
def test_any_string_not_of_digest_form_is_invalid_input(
    blob_store: BlobStore, out_dir: Path, digest: str
) -> None:
    if DIGEST_FORM.fullmatch(digest):
        return  # a well-formed digest: covered by the other tests
    for method in METHODS:
        with pytest.raises(InvalidInput):
            _call_with_digest(blob_store, method, digest, out_dir / "out.bin")


# --- integrity ----------------------------------------------------------------


def test_verify_passes_for_intact_blob(blob_store: BlobStore) -> None:
    info = blob_store.put(os.urandom(CHUNK_SIZE + 1))
    blob_store.verify(info.digest)


def test_a_flipped_byte_is_detected(blob_store: BlobStore, rewrite_blob, out_dir: Path) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(3 * CHUNK_SIZE)
    info = blob_store.put(data)
    rewrite_blob(info.digest, flip_first_byte)
    damaged = digest_of(flip_first_byte(data))
    dest = out_dir / "out.bin"
    for check in (
        lambda: blob_store.verify(info.digest),
        lambda: blob_store.get(info.digest),
        lambda: blob_store.download(info.digest, dest),
    ):
        with pytest.raises(IntegrityError) as caught:
            check()
        assert info.digest in str(caught.value)  # expected
        assert damaged in str(caught.value)  # actual
    assert not dest.exists()


def test_a_failed_download_leaves_an_existing_dest_untouched(
    blob_store: BlobStore,
    rewrite_blob,  # type: ignore[no-untyped-def]
    out_dir: Path,
) -> None:
    info = blob_store.put(b"good bytes")
    rewrite_blob(info.digest, flip_first_byte)
    dest = out_dir / "out.bin"
    dest.write_bytes(b"previous version")
    with pytest.raises(IntegrityError):
        blob_store.download(info.digest, dest)
    assert dest.read_bytes() == b"previous version"
    assert [p.name for p in out_dir.iterdir()] == ["out.bin"]  # no temp file left


# --- download -----------------------------------------------------------------


def test_download_writes_the_verified_bytes(blob_store: BlobStore, out_dir: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 9)
    info = blob_store.put(data)
    dest = out_dir / "models" / "model.bin"
    blob_store.download(info.digest, str(dest))
    assert dest.read_bytes() == data
    assert [p.name for p in dest.parent.iterdir()] == ["model.bin"]


def test_download_replaces_an_existing_file(blob_store: BlobStore, out_dir: Path) -> None:
    info = blob_store.put(b"new")
    dest = out_dir / "out.bin"
    dest.write_bytes(b"old contents, longer than the new")
    blob_store.download(info.digest, dest)
    assert dest.read_bytes() == b"new"


def test_repr_names_the_backend_and_url(blob_store: BlobStore) -> None:
    assert repr(blob_store) == f"{type(blob_store).__name__}({blob_store.url!r})"


def test_writer_stores_what_was_written_under_its_digest(blob_store: BlobStore) -> None:
    payload = os.urandom(3 * CHUNK_SIZE + 17)
    with blob_store.writer() as sink:
        for start in range(0, len(payload), 100_000):
            sink.write(payload[start : start + 100_000])
        assert sink.tell() == len(payload)
    expected = "sha256:" + hashlib.sha256(payload).hexdigest()
    assert sink.info == BlobInfo(expected, len(payload))
    assert blob_store.get(expected) == payload


def test_writer_stores_nothing_when_the_block_fails(blob_store: BlobStore, stored_keys) -> None:  # type: ignore[no-untyped-def]
    before = stored_keys()
    with pytest.raises(RuntimeError), blob_store.writer() as sink:
        sink.write(b"half a blob")
        raise RuntimeError("producer failed")
    assert sink.info is None
    assert stored_keys() == before
    assert not blob_store.exists("sha256:" + hashlib.sha256(b"half a blob").hexdigest())
