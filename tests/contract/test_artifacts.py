"""Artifacts up and down, checked on arrival; a bad transfer stores and writes nothing."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.errors import IntegrityError, NotFound


def _blob_path(backing: sy.Client, digest: str) -> Path:
    root = Path(backing.settings.artifacts)
    hexdigest = digest.removeprefix("sha256:")
    (found,) = [p for p in root.rglob(f"*{hexdigest}*") if p.is_file()]
    return found


def test_files_and_folders_round_trip(any_client: sy.Client, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    (folder / "plots").mkdir(parents=True)
    (folder / "plots" / "roc.png").write_bytes(b"\x89PNG" + bytes(range(256)) * 10)
    (folder / "notes.txt").write_text("hello\n")
    single = tmp_path / "model.json"
    single.write_text('{"a": 1}')
    run = any_client.create_run("art")

    stored = any_client.log_artifact(run.run_id, folder)
    stored += any_client.log_artifact(run.run_id, single, name="cfg/model.json")
    assert sorted(a.path for a in stored) == [
        "cfg/model.json",
        "out/notes.txt",
        "out/plots/roc.png",
    ]
    assert [a.path for a in any_client.list_artifacts(run.run_id, "out/plots")] == [
        "out/plots/roc.png"
    ]
    got = any_client.get_artifact(run.run_id, "cfg/model.json")
    assert got.digest == "sha256:" + hashlib.sha256(single.read_bytes()).hexdigest()

    dest = tmp_path / "down"
    where = any_client.download_artifacts(run.run_id, "out", dest)
    assert where == dest / "out"
    assert (dest / "out" / "plots" / "roc.png").read_bytes() == (
        folder / "plots" / "roc.png"
    ).read_bytes()
    assert (dest / "out" / "notes.txt").read_text() == "hello\n"
    with pytest.raises(NotFound):
        any_client.download_artifacts(run.run_id, "missing", dest)
    with pytest.raises(NotFound):
        any_client.log_artifact(run.run_id, tmp_path / "no-such-file")


def test_fluent_log_artifact(any_client: sy.Client, tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text("# ok\n")
    with sy.start_run(experiment="art") as run:
        sy.log_artifact(path)
    assert [a.path for a in any_client.list_artifacts(run.run_id)] == ["report.md"]


def test_a_corrupt_blob_is_never_downloaded_whole(
    any_client: sy.Client, backing: sy.Client, tmp_path: Path
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(3 << 20))
    run = any_client.create_run("art")
    (artifact,) = any_client.log_artifact(run.run_id, source)
    blob = _blob_path(backing, artifact.digest)
    blob.chmod(0o644)
    corrupted = bytearray(blob.read_bytes())
    corrupted[-1] ^= 0xFF
    blob.write_bytes(bytes(corrupted))

    dest = tmp_path / "down"
    with pytest.raises(IntegrityError):
        any_client.download_artifacts(run.run_id, "data.bin", dest)
    assert not (dest / "data.bin").exists()
    assert [p.name for p in dest.rglob("*") if p.is_file()] == []


def test_an_upload_that_fails_midway_stores_nothing(any_client: sy.Client) -> None:
    run = any_client.create_run("art")

    def chunks():  # type: ignore[no-untyped-def]
        yield b"x" * (1 << 20)
        raise OSError("the source went away")

    with pytest.raises(OSError, match="went away"):
        any_client.log_artifact_stream(run.run_id, "partial.bin", chunks())
    assert any_client.list_artifacts(run.run_id) == []
    stored = any_client.log_artifact_stream(run.run_id, "whole.bin", [b"ab", b"cd"])
    assert stored.size == 4


def test_remote_upload_with_a_wrong_digest_is_refused(
    any_client: sy.Client, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode != "remote":
        pytest.skip("a transfer check of the HTTP client")
    from shipyard.tracking import _remote

    source = tmp_path / "a.bin"
    source.write_bytes(b"the real bytes")
    monkeypatch.setattr(_remote, "_hash_file", lambda path: ("sha256:" + "0" * 64, 14))
    run = any_client.create_run("art")
    with pytest.raises(IntegrityError):
        any_client.log_artifact(run.run_id, source)
    assert any_client.list_artifacts(run.run_id) == []


def test_a_big_artifact_streams_in_bounded_memory(any_client: sy.Client, tmp_path: Path) -> None:
    size = 64 << 20
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        for _ in range(size >> 20):
            out.write(os.urandom(1 << 20))
    run = any_client.create_run("big")

    tracemalloc.start()
    try:
        (artifact,) = any_client.log_artifact(run.run_id, source)
        any_client.download_artifacts(run.run_id, "big.bin", tmp_path / "down")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert artifact.size == size
    assert (tmp_path / "down" / "big.bin").stat().st_size == size
    # Client and server share this process: both stay within a few 1 MiB chunks.
    assert peak < 16 << 20, f"peak traced memory {peak / 2**20:.1f} MiB"
