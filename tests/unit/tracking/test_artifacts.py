"""Run artifacts: files and folders stored as blobs, listed and downloaded by path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import shipyard as sy
from shipyard.errors import IntegrityError, NotFound, UnsafePath
from traversal import TRAVERSAL_CORPUS


@pytest.fixture
def client(store_uri: str, tmp_path: Path) -> sy.Client:
    return sy.Client(store_uri, artifacts=str(tmp_path / "blobs"))


@pytest.fixture
def run_id(client: sy.Client) -> str:
    return client.create_run("credit").run_id


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "report"
    (root / "plots").mkdir(parents=True)
    (root / "summary.txt").write_text("auc 0.91\n")
    (root / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    return root


def test_a_file_is_stored_under_its_name_with_its_digest(
    client: sy.Client, run_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00weights" * 1000)
    (artifact,) = client.log_artifact(run_id, source)
    assert artifact.path == "model.bin"
    assert artifact.digest == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
    assert artifact.size == 8000
    assert client.list_artifacts(run_id) == [artifact]


def test_a_folder_keeps_its_layout_and_downloads_verified(
    client: sy.Client, run_id: str, folder: Path, tmp_path: Path
) -> None:
    client.log_artifact(run_id, folder, name="eval")
    assert [a.path for a in client.list_artifacts(run_id)] == [
        "eval/plots/roc.csv",
        "eval/summary.txt",
    ]
    assert [a.path for a in client.list_artifacts(run_id, "eval/plots")] == ["eval/plots/roc.csv"]
    dest = client.download_artifacts(run_id, "eval", tmp_path / "out")
    assert (dest / "summary.txt").read_text() == "auc 0.91\n"
    assert (dest / "plots" / "roc.csv").read_text() == "fpr,tpr\n0,0\n1,1\n"


def test_fluent_log_artifact_targets_the_active_run(
    client: sy.Client, store_uri: str, folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_URI", store_uri)
    monkeypatch.setenv("SHIPYARD_ARTIFACTS", str(tmp_path / "blobs"))
    with sy.start_run(experiment="credit") as run:
        sy.log_artifact(folder / "summary.txt", name="notes/summary.txt")
    assert [a.path for a in client.list_artifacts(run.run_id)] == ["notes/summary.txt"]


def test_prefix_listing_does_not_match_siblings_with_a_common_prefix(
    client: sy.Client, run_id: str, tmp_path: Path
) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    client.log_artifact(run_id, source, name="plot/a.txt")
    client.log_artifact(run_id, source, name="plots/b.txt")
    client.log_artifact(run_id, source, name="plot_x/c.txt")
    assert [a.path for a in client.list_artifacts(run_id, "plot")] == ["plot/a.txt"]


def test_a_tampered_blob_is_refused_on_download(
    client: sy.Client, run_id: str, folder: Path, tmp_path: Path
) -> None:
    (artifact,) = client.log_artifact(run_id, folder / "summary.txt")
    hexdigest = artifact.digest.split(":", 1)[1]
    (stored,) = [p for p in (tmp_path / "blobs").rglob(hexdigest) if p.is_file()]
    stored.chmod(0o644)
    stored.write_bytes(b"auc 0.99\n")
    with pytest.raises(IntegrityError):
        client.download_artifacts(run_id, "summary.txt", tmp_path / "out")
    assert not (tmp_path / "out" / "summary.txt").exists()


@pytest.mark.parametrize("name", TRAVERSAL_CORPUS)
def test_hostile_artifact_names_are_refused(
    client: sy.Client, run_id: str, folder: Path, name: str
) -> None:
    with pytest.raises(UnsafePath):
        client.log_artifact(run_id, folder / "summary.txt", name=name)
    assert client.list_artifacts(run_id) == []


@pytest.mark.parametrize("path", [p for p in TRAVERSAL_CORPUS if p])
def test_hostile_paths_are_refused_when_listing_and_downloading(
    client: sy.Client, run_id: str, folder: Path, tmp_path: Path, path: str
) -> None:
    client.log_artifact(run_id, folder / "summary.txt")
    with pytest.raises(UnsafePath):
        client.list_artifacts(run_id, path)
    with pytest.raises(UnsafePath):
        client.download_artifacts(run_id, path, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_symlink_out_of_a_logged_folder_is_refused(
    client: sy.Client, run_id: str, folder: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    os.symlink(secret, folder / "link.txt")
    with pytest.raises(UnsafePath, match="symlink"):
        client.log_artifact(run_id, folder)
    assert client.list_artifacts(run_id) == []


def test_missing_source_and_unknown_artifact_are_not_found(
    client: sy.Client, run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(NotFound):
        client.log_artifact(run_id, tmp_path / "absent.txt")
    with pytest.raises(NotFound):
        client.download_artifacts(run_id, "absent.txt", tmp_path / "out")
