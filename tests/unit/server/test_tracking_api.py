"""Experiments, runs, params, metrics, tags, search and artifacts over HTTP."""

from __future__ import annotations

import hashlib
import math

import pytest

import shipyard as sy


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body["error"]) >= {"code", "message", "hint"}, body
    return body["error"]["code"]


def test_experiments(api) -> None:  # type: ignore[no-untyped-def]
    created = api.post("/experiments", json={"name": "credit", "description": "risk"})
    assert created.status_code == 201, created.text
    experiment = created.json()
    assert (experiment["name"], experiment["description"]) == ("credit", "risk")
    assert isinstance(experiment["created_at"], int)

    assert api.get("/experiments/credit").json() == experiment
    assert api.get(f"/experiments/{experiment['experiment_id']}").json() == experiment

    again = api.post("/experiments", json={"name": "credit"})
    assert (again.status_code, error_code(again)) == (409, "already_exists")
    missing = api.get("/experiments/nope")
    assert (missing.status_code, error_code(missing)) == (404, "not_found")


def test_experiments_are_paged(api) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        assert api.post("/experiments", json={"name": f"e{i}"}).status_code == 201
    names, token, pages = [], None, 0
    while True:
        params = {"max_results": 2} | ({"page_token": token} if token else {})
        body = api.get("/experiments", params=params).json()
        names += [e["name"] for e in body["items"]]
        pages += 1
        token = body["next_page_token"]
        if token is None:
            break
    assert names == [f"e{i}" for i in range(5)]
    assert pages == 3


def test_run_lifecycle_and_logging(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    created = api.post(
        "/runs", json={"experiment": "credit", "name": "lr", "tags": {"team": "risk"}}
    )
    assert created.status_code == 201, created.text
    run = created.json()
    assert (run["status"], run["name"], run["tags"]) == ("RUNNING", "lr", {"team": "risk"})
    run_id = run["run_id"]

    logged = api.post(
        f"/runs/{run_id}/batch",
        json={
            "metrics": [
                {"key": "loss", "value": 1.0, "step": 0, "timestamp": 1000},
                {"key": "loss", "value": 0.5, "step": 1, "timestamp": 2000},
                {"key": "odd", "value": "NaN", "step": 0},
                {"key": "big", "value": "Infinity"},
                {"key": "small", "value": "-Infinity"},
                {"key": "int", "value": 3},
            ],
            "params": {"C": 0.1, "model": "logistic", "fit": True},
            "tags": {"stage": "candidate"},
        },
    )
    assert logged.status_code == 200, logged.text
    assert logged.json() == {"metrics": 6, "params": 3, "tags": 1}
    assert (
        api.post(
            f"/runs/{run_id}/metrics", json={"metrics": [{"key": "auc", "value": 0.9}]}
        ).json()["metrics"]
        == 1
    )
    assert api.post(f"/runs/{run_id}/params", json={"params": {"seed": 7}}).status_code == 200
    assert api.post(f"/runs/{run_id}/tags", json={"tags": {"owner": "ana"}}).status_code == 200

    got = api.get(f"/runs/{run_id}").json()
    assert got["params"] == {"C": "0.1", "model": "logistic", "fit": "True", "seed": "7"}
    assert got["tags"] == {"team": "risk", "stage": "candidate", "owner": "ana"}
    metrics = {k: m["value"] for k, m in got["metrics"].items()}
    assert metrics == {
        "loss": 0.5,
        "odd": "NaN",
        "big": "Infinity",
        "small": "-Infinity",
        "int": 3.0,
        "auc": 0.9,
    }
    assert math.isnan(client.get_run(run_id).metrics["odd"].value)  # stored as a real NaN

    history = api.get(f"/runs/{run_id}/metric-history", params={"key": "loss", "max_results": 1})
    first = history.json()
    assert first["items"] == [{"key": "loss", "value": 1.0, "step": 0, "timestamp": 1000}]
    second = api.get(
        f"/runs/{run_id}/metric-history",
        params={"key": "loss", "max_results": 1, "page_token": first["next_page_token"]},
    ).json()
    assert [p["value"] for p in second["items"]] == [0.5]
    assert second["next_page_token"] is None

    ended = api.post(f"/runs/{run_id}/end", json={"status": "FAILED"})
    assert ended.json()["status"] == "FAILED"
    assert isinstance(ended.json()["end_time"], int)
    assert api.post(f"/runs/{run_id}/end", json={"status": "RUNNING"}).status_code == 422


def test_params_are_immutable(api) -> None:  # type: ignore[no-untyped-def]
    run_id = api.post("/runs", json={}).json()["run_id"]
    assert api.post(f"/runs/{run_id}/params", json={"params": {"C": "1"}}).status_code == 200
    changed = api.post(f"/runs/{run_id}/params", json={"params": {"C": "2"}})
    assert changed.status_code == 409, changed.text
    assert error_code(changed) == "conflict"


def test_a_batch_is_all_or_nothing(api) -> None:  # type: ignore[no-untyped-def]
    run_id = api.post("/runs", json={}).json()["run_id"]
    api.post(f"/runs/{run_id}/params", json={"params": {"C": "1"}})
    refused = api.post(
        f"/runs/{run_id}/batch",
        json={"metrics": [{"key": "auc", "value": 0.9}], "params": {"C": "2"}},
    )
    assert refused.status_code == 409
    assert api.get(f"/runs/{run_id}").json()["metrics"] == {}


def test_search_runs(api) -> None:  # type: ignore[no-untyped-def]
    for i, (model, auc) in enumerate([("lr", 0.7), ("rf", 0.9), ("lr", 0.8)]):
        run_id = api.post("/runs", json={"experiment": "credit", "name": f"r{i}"}).json()["run_id"]
        api.post(
            f"/runs/{run_id}/batch",
            json={"metrics": [{"key": "auc", "value": auc}], "params": {"model": model}},
        )
    api.post("/runs", json={"experiment": "other"})

    body = {
        "experiments": ["credit"],
        "filter": "params.model = 'lr'",
        "order_by": ["metrics.auc DESC"],
        "max_results": 1,
    }
    first = api.post("/runs/search", json=body).json()
    assert [r["name"] for r in first["items"]] == ["r2"]
    second = api.post("/runs/search", json=body | {"page_token": first["next_page_token"]}).json()
    assert [r["name"] for r in second["items"]] == ["r0"]
    assert second["next_page_token"] is None

    listed = api.get(
        "/runs", params={"experiment": "credit", "order_by": "metrics.auc DESC"}
    ).json()
    assert [r["name"] for r in listed["items"]] == ["r1", "r2", "r0"]
    assert len(api.get("/runs").json()["items"]) == 4

    bad = api.post("/runs/search", json={"filter": "metrics.auc >>> 1"})
    assert (bad.status_code, error_code(bad)) == (400, "invalid_input")
    unknown = api.post("/runs/search", json={"experiments": ["nope"]})
    assert unknown.status_code == 404


def test_missing_run(api) -> None:  # type: ignore[no-untyped-def]
    for method, path, body in [
        ("GET", "/runs/abc", None),
        ("POST", "/runs/abc/batch", {"metrics": []}),
        ("POST", "/runs/abc/end", {}),
        ("GET", "/runs/abc/metric-history?key=x", None),
        ("GET", "/runs/abc/artifacts", None),
        ("GET", "/runs/abc/artifacts/a.txt", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert error_code(response) == "not_found"
    refused = api.put("/runs/abc/artifacts/a.txt", content=b"x")
    assert refused.status_code == 404


# ------------------------------------------------------------------------ artifacts


@pytest.fixture
def run_id(api) -> str:  # type: ignore[no-untyped-def]
    return api.post("/runs", json={"experiment": "credit"}).json()["run_id"]


def test_artifact_upload_list_download(api, run_id: str, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    payload = b"roc curve\n" * 100_000  # ~1 MB: several blocks
    stored = api.put(
        f"/runs/{run_id}/artifacts/plots/roc.txt",
        content=payload,
        headers={"X-Shipyard-Digest": digest_of(payload)},
    )
    assert stored.status_code == 201, stored.text
    assert stored.json() == {
        "path": "plots/roc.txt",
        "digest": digest_of(payload),
        "size": len(payload),
    }
    api.put(f"/runs/{run_id}/artifacts/model.json", content=b"{}")

    listed = api.get(f"/runs/{run_id}/artifacts").json()
    assert [a["path"] for a in listed["items"]] == ["model.json", "plots/roc.txt"]
    below = api.get(f"/runs/{run_id}/artifacts", params={"path": "plots"}).json()
    assert [a["path"] for a in below["items"]] == ["plots/roc.txt"]
    paged = api.get(f"/runs/{run_id}/artifacts", params={"max_results": 1}).json()
    assert len(paged["items"]) == 1
    assert paged["next_page_token"]

    downloaded = api.get(f"/runs/{run_id}/artifacts/plots/roc.txt")
    assert downloaded.status_code == 200
    assert downloaded.content == payload
    assert downloaded.headers["content-length"] == str(len(payload))
    assert downloaded.headers["x-shipyard-digest"] == digest_of(payload)
    # The embedded client sees the same artifact.
    assert client.list_artifacts(run_id)[1].digest == digest_of(payload)
    audit = client.audit_events("run", run_id)
    assert audit[-1].action == "run.log_artifacts"


def test_upload_with_a_wrong_digest_stores_nothing(api, run_id: str, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    payload = b"the real bytes"
    refused = api.put(
        f"/runs/{run_id}/artifacts/a.bin",
        content=payload,
        headers={"X-Shipyard-Digest": digest_of(b"other bytes")},
    )
    assert refused.status_code == 422, refused.text
    assert error_code(refused) == "integrity_error"
    assert client.list_artifacts(run_id) == []
    assert not client.blobs.exists(digest_of(payload))

    malformed = api.put(
        f"/runs/{run_id}/artifacts/a.bin", content=payload, headers={"X-Shipyard-Digest": "md5:x"}
    )
    assert malformed.status_code == 400


def test_truncated_upload_stores_nothing(api, run_id: str, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    payload = b"only part of it"
    refused = api.put(
        f"/runs/{run_id}/artifacts/a.bin",
        content=payload,
        headers={"Content-Length": str(len(payload) + 10)},
    )
    assert refused.status_code == 400, refused.text
    assert "truncated" in refused.json()["error"]["message"]
    assert client.list_artifacts(run_id) == []
    assert not client.blobs.exists(digest_of(payload))


def test_streamed_upload_without_length(api, run_id: str) -> None:  # type: ignore[no-untyped-def]
    chunks = [b"a" * 70_000, b"b" * 3, b"c" * 1_100_000]
    stored = api.put(f"/runs/{run_id}/artifacts/chunked.bin", content=iter(chunks))
    assert stored.status_code == 201, stored.text
    assert stored.json()["digest"] == digest_of(b"".join(chunks))


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../b", "%2e%2e/x", "a\\b", ".../x"])
def test_unsafe_artifact_paths_are_refused(api, run_id: str, path: str) -> None:  # type: ignore[no-untyped-def]
    refused = api.put(f"/runs/{run_id}/artifacts/{path}", content=b"x")
    assert refused.status_code in (400, 404), refused.text
    assert "error" in refused.json()


def test_download_of_a_corrupt_blob_is_cut_short(
    api, lenient_api, run_id: str, client: sy.Client
) -> None:  # type: ignore[no-untyped-def]
    from shipyard.blobs._base import blob_key

    payload = b"x" * 3_000_000
    api.put(f"/runs/{run_id}/artifacts/big.bin", content=payload)
    path = client.blobs.root / blob_key(digest_of(payload))  # type: ignore[attr-defined]
    path.chmod(0o644)
    path.write_bytes(b"y" * len(payload))
    response = lenient_api.get(f"/runs/{run_id}/artifacts/big.bin")
    # The last block is held back: the client gets fewer bytes than Content-Length.
    assert int(response.headers["content-length"]) == len(payload)
    assert len(response.content) < len(payload)
