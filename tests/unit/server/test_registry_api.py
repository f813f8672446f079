"""Datasets, models, lineage and audit over HTTP."""

from __future__ import annotations

import base64
import hashlib
import io
import zlib

import pyarrow.parquet as pq
import pytest

import shipyard as sy
from shipyard.server._auth import Role

from .conftest import credit_frame


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def csv_bytes(rows: int, seed: int = 0) -> bytes:
    return credit_frame(rows, seed).to_csv(index=False).encode()


# ------------------------------------------------------------------------- datasets


def test_register_a_csv_upload_and_read_it_back(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    body = csv_bytes(50)
    created = api.post(
        "/datasets/credit/versions",
        content=body,
        headers={"Content-Type": "text/csv", "X-Shipyard-Digest": digest_of(body)},
        params={"description": "loans"},
    )
    assert created.status_code == 201, created.text
    version = created.json()
    assert (version["name"], version["version"], version["rows"]) == ("credit", 1, 50)
    assert [c["name"] for c in version["schema"]] == ["id", "income", "age", "region"]
    assert version["profile"]["columns"]["income"]["count"] == 50
    assert version["validation"] is None or version["validation"]["passed"]
    assert version["uri"] == "dataset:credit@1"

    listed = api.get("/datasets").json()
    assert [(d["name"], d["latest_version"], d["description"]) for d in listed["items"]] == [
        ("credit", 1, "loans")
    ]
    assert api.get("/datasets/credit").json()["latest_version"] == 1
    summaries = api.get("/datasets/credit/versions").json()["items"]
    assert [v["version"] for v in summaries] == [1]
    assert "profile" not in summaries[0]
    assert api.get("/datasets/credit/versions/1").json() == version

    parquet = api.get("/datasets/credit/versions/1/data")
    assert parquet.status_code == 200
    assert parquet.headers["x-shipyard-digest"] == version["digest"] == digest_of(parquet.content)
    assert int(parquet.headers["content-length"]) == version["bytes"]
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.num_rows == 50

    # The same rows, sent as Parquet this time, are the version stored already.
    again = api.post(
        "/datasets/credit/versions", content=parquet.content, params={"format": "parquet"}
    )
    assert again.status_code == 201, again.text
    assert again.json()["version"] == 1


def test_upload_refusals_store_nothing(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    body = csv_bytes(10)
    cases = [
        ({"Content-Type": "text/csv", "X-Shipyard-Digest": digest_of(b"x")}, body, 422),
        ({"Content-Type": "text/csv", "Content-Length": str(len(body) + 5)}, body, 400),
        ({"Content-Type": "application/octet-stream"}, body, 400),  # CSV or Parquet?
        ({"Content-Type": "text/csv"}, b"", 400),  # empty
        ({"Content-Type": "text/csv"}, b"a,b\n1,2,3,4\n\x00\xff", 400),  # not CSV
        ({"Content-Type": "application/vnd.apache.parquet"}, b"PAR1 not really", 400),
    ]
    for headers, content, status in cases:
        refused = api.post("/datasets/credit/versions", content=content, headers=headers)
        assert refused.status_code == status, (headers, refused.text)
        assert "error" in refused.json()
    assert api.get("/datasets").json()["items"] == []
    bad_name = api.post("/datasets/..%20x/versions", content=body, params={"format": "csv"})
    assert bad_name.status_code == 400


def test_contract_and_diff(api, registry: str) -> None:  # type: ignore[no-untyped-def]
    contract = api.get("/datasets/credit/contract").json()
    assert contract["name"] == "credit"
    assert "income" in contract["contract"]

    text = contract["contract"].replace("mode: warn", "mode: strict")
    stored = api.put("/datasets/credit/contract", json={"contract": text})
    assert stored.status_code == 200, stored.text
    assert stored.json()["contract_version"] >= 2

    broken = api.put("/datasets/credit/contract", json={"contract": "columns: [1, 2"})
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "invalid_input")
    nothing = api.put("/datasets/nope/contract", json={"contract": text})
    assert nothing.status_code == 400

    diff = api.get("/datasets/credit/diff", params={"old": 1, "new": 2})
    assert diff.status_code == 200, diff.text
    assert (diff.json()["rows_old"], diff.json()["rows_new"]) == (80, 60)
    assert {c["column"] for c in diff.json()["columns"]} >= {"income", "age"}
    assert api.get("/datasets/credit/diff", params={"old": 1, "new": 9}).status_code == 404


def test_missing_datasets(api) -> None:  # type: ignore[no-untyped-def]
    for path in [
        "/datasets/nope",
        "/datasets/nope/versions",
        "/datasets/nope/versions/1",
        "/datasets/nope/versions/1/data",
        "/datasets/nope/contract",
    ]:
        response = api.get(path)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert api.get("/datasets/nope/versions/0").status_code == 422


# --------------------------------------------------------------------------- models


def test_models_and_versions(api, registry: str) -> None:  # type: ignore[no-untyped-def]
    listed = api.get("/models").json()
    assert [(m["name"], m["latest_version"]) for m in listed["items"]] == [("credit", 2)]
    assert api.get("/models", params={"name": "cred"}).json()["items"][0]["name"] == "credit"
    assert api.get("/models", params={"name": "zzz"}).json()["items"] == []
    assert api.get("/models", params={"tag": "oops"}).status_code == 400

    updated = api.patch("/models/credit", json={"description": "risk", "tags": {"team": "risk"}})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["description"], updated.json()["tags"]) == ("risk", {"team": "risk"})
    assert api.get("/models", params={"tag": "team=risk"}).json()["items"][0]["name"] == "credit"
    assert api.get("/models/credit").json() == updated.json()

    versions = api.get("/models/credit/versions", params={"max_results": 1}).json()
    assert [v["version"] for v in versions["items"]] == [1]
    assert versions["next_page_token"]
    one = api.get("/models/credit/versions/2").json()
    assert (one["uri"], one["flavor"], one["run_id"], one["status"]) == (
        "models:/credit/2",
        "sklearn",
        registry,
        "ready",
    )
    assert one["datasets"] == [{"name": "credit", "version": 1}]
    assert [c["name"] for c in one["signature"]["inputs"]] == ["income", "age"]

    archived = api.put("/models/credit/versions/2/status", json={"status": "archived"})
    assert archived.json()["status"] == "archived"
    assert api.get("/models/credit/aliases/latest").json()["version"] == 1
    assert api.put("/models/credit/versions/2/status", json={"status": "gone"}).status_code == 422


def test_aliases_and_their_history(api, registry: str, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    moved = api.put("/models/credit/aliases/champion", json={"version": 1})
    assert moved.json() == {"name": "credit", "alias": "champion", "version": 1, "previous": None}
    moved = api.put("/models/credit/aliases/champion", json={"version": 2})
    assert moved.json()["previous"] == 1
    assert api.get("/models/credit/aliases/champion").json()["version"] == 2
    assert api.get("/models/credit").json()["aliases"] == {"champion": 2}

    removed = api.delete("/models/credit/aliases/champion")
    assert removed.json() == {"name": "credit", "alias": "champion", "version": None, "previous": 2}
    assert api.get("/models/credit/aliases/champion").status_code == 404
    assert api.delete("/models/credit/aliases/champion").status_code == 404

    history = api.get("/models/credit/alias-history").json()["items"]
    assert [(h["action"], h["alias"], h["previous"], h["version"]) for h in history] == [
        ("model.alias.set", "champion", None, 1),
        ("model.alias.set", "champion", 1, 2),
        ("model.alias.delete", "champion", 2, None),
    ]
    assert {h["actor"] for h in history} == {client.actor}

    assert api.put("/models/credit/aliases/latest", json={"version": 1}).status_code == 400
    assert api.put("/models/credit/aliases/x", json={"version": 9}).status_code == 404
    assert api.put("/models/credit/aliases/x", json={"version": 0}).status_code == 422
    assert api.put("/models/nope/aliases/x", json={"version": 1}).status_code == 404


def test_champion_needs_an_admin(api, registry: str, as_role, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    as_role("eve", Role.editor)
    refused = api.put("/models/credit/aliases/champion", json={"version": 1})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "admin" in refused.json()["error"]["message"]
    assert api.put("/models/credit/aliases/challenger", json={"version": 2}).status_code == 200
    # The audit trail names the caller, not the server's own actor.
    assert client.audit_events("model", "credit")[-1].actor == "eve"

    as_role("root", Role.admin)
    assert api.put("/models/credit/aliases/champion", json={"version": 1}).status_code == 200
    as_role("eve", Role.editor)
    assert api.delete("/models/credit/aliases/champion").status_code == 403
    assert api.get("/models/credit").json()["aliases"] == {"challenger": 2, "champion": 1}

    as_role("val", Role.viewer)
    assert api.get("/models/credit").status_code == 200
    assert api.put("/models/credit/aliases/challenger", json={"version": 1}).status_code == 403


def test_model_card_and_files(api, registry: str) -> None:  # type: ignore[no-untyped-def]
    markdown = api.get("/models/credit/versions/1/card")
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "credit" in markdown.text
    html = api.get("/models/credit/versions/1/card", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text.lower()
    assert api.get("/models/credit/versions/1/card", params={"format": "pdf"}).status_code == 422

    version = api.get("/models/credit/versions/1").json()
    native = api.get("/models/credit/versions/1/files/native")
    assert native.status_code == 200
    assert native.headers["x-shipyard-digest"] == version["files"]["native"]["digest"]
    assert digest_of(native.content) == version["files"]["native"]["digest"]
    assert int(native.headers["content-length"]) == version["files"]["native"]["size"]
    onnx = api.get("/models/credit/versions/1/files/onnx")
    assert onnx.status_code == 404
    assert "native" in onnx.json()["error"]["hint"]


@pytest.mark.parametrize(
    "path",
    [
        "/models/nope",
        "/models/nope/versions",
        "/models/credit/versions/9",
        "/models/credit/versions/9/card",
        "/models/credit/versions/9/files/native",
        "/models/nope/alias-history",
        "/models/credit/aliases/nope",
    ],
)
def test_missing_models(api, registry: str, path: str) -> None:  # type: ignore[no-untyped-def]
    response = api.get(path)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "not_found"


# ----------------------------------------------------------------------- governance


def test_lineage(api, registry: str) -> None:  # type: ignore[no-untyped-def]
    graph = api.get("/lineage", params={"ref": "dataset:credit@1"}).json()
    assert graph["root"] == "dataset:credit@1"
    assert {
        "source": "dataset:credit@1",
        "target": f"run:{registry}",
        "relation": "input",
    } in graph["edges"]
    assert "model:credit/1" in graph["nodes"]
    by_model = api.get("/lineage", params={"ref": "model:credit/2", "depth": 1}).json()
    assert f"run:{registry}" in by_model["nodes"]
    assert api.get("/lineage", params={"ref": f"run:{registry}"}).status_code == 200

    assert api.get("/lineage", params={"ref": "credit"}).status_code == 400
    assert api.get("/lineage", params={"ref": "dataset:credit@9"}).status_code == 404
    assert api.get("/lineage", params={"ref": "run:nope"}).status_code == 404


def test_audit_events_and_verify(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        api.post("/experiments", json={"name": f"e{i}"})
    everything = api.get("/audit/events").json()["items"]
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert all(e["actor"] == client.actor for e in everything)

    first = api.get("/audit/events", params={"max_results": 2}).json()
    second = api.get(
        "/audit/events", params={"max_results": 2, "page_token": first["next_page_token"]}
    ).json()
    assert [e["seq"] for e in first["items"] + second["items"]] == [1, 2, 3, 4][: len(everything)]

    experiment_id = client.get_experiment("e1").experiment_id
    about = api.get(
        "/audit/events", params={"object_type": "experiment", "object_id": experiment_id}
    ).json()["items"]
    assert [e["action"] for e in about] == ["experiment.create"]
    assert api.get("/audit/events", params={"object_id": "1"}).status_code == 400

    assert api.get("/audit/verify").json() == {
        "ok": True,
        "checked": len(everything),
        "first_bad_seq": None,
        "reason": None,
    }


# -------------------------------------------------- a contract sent with an upload


def contract_header(text: str) -> dict[str, str]:
    return {"X-Shipyard-Contract": base64.urlsafe_b64encode(zlib.compress(text.encode())).decode()}


STRICT = """\
mode: strict
columns:
  id: {type: int64, nullable: false}
  income: {type: double, nullable: false}
  age: {type: int64, nullable: false, max: 60}
  region: {type: string, nullable: false}
"""


def test_a_contract_travels_with_the_upload(api, client: sy.Client) -> None:  # type: ignore[no-untyped-def]
    csv = {"Content-Type": "text/csv"}
    refused = api.post(
        "/datasets/credit/versions",
        content=csv_bytes(40),
        headers={**csv, **contract_header(STRICT)},
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "contract_violation"
    assert "age: expected values <= 60" in error["message"]
    assert error["hint"]
    assert api.get("/datasets").json()["items"] == []

    young = credit_frame(40).assign(age=30).to_csv(index=False).encode()
    stored = api.post(
        "/datasets/credit/versions", content=young, headers={**csv, **contract_header(STRICT)}
    )
    assert stored.status_code == 201, stored.text
    assert "max: 60" in api.get("/datasets/credit/contract").json()["contract"]


#: (header value, what the 400 says); the last is over the header's own limit (422).
BAD_CONTRACT_HEADERS = [
    ("not base64 at all!", "X-Shipyard-Contract header is not a contract"),
    (base64.urlsafe_b64encode(b"plain, not deflated").decode(), "not a contract"),
    (base64.urlsafe_b64encode(zlib.compress(b"\xff\xfe")).decode(), "not a contract"),
    (base64.urlsafe_b64encode(zlib.compress(b"x" * 2_000_000)).decode(), "at most"),
    (contract_header("columns: [1, 2")["X-Shipyard-Contract"], "not valid YAML"),
    (contract_header("mode: sometimes\ncolumns: {}\n")["X-Shipyard-Contract"], "mode"),
    ("A" * 70_000, "X-Shipyard-Contract"),
]


def test_a_bad_contract_header_is_refused_before_anything_is_stored(api) -> None:  # type: ignore[no-untyped-def]
    for header, message in BAD_CONTRACT_HEADERS:
        refused = api.post(
            "/datasets/credit/versions",
            content=csv_bytes(10),
            headers={"Content-Type": "text/csv", "X-Shipyard-Contract": header},
        )
        assert refused.status_code in (400, 422), refused.text
        error = refused.json()["error"]
        assert {"code", "message", "hint"} <= set(error)
        assert message in error["message"], (header[:40], error)
    assert api.get("/datasets").json()["items"] == []


# ------------------------------------------------------------- an uploaded ONNX file


@pytest.fixture
def onnx_upload(api, registry: str, client: sy.Client) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Version 1 exported here (embedded); its ONNX file uploaded again as a raw file."""
    exported = sy.export_onnx("models:/credit/1", client=client).files["onnx"]
    data = client.blobs.get(exported.digest)
    stored = api.post(
        "/models/credit/files", content=data, headers={"X-Shipyard-Digest": digest_of(data)}
    )
    assert stored.status_code == 201, stored.text
    return {
        "serialization": "onnx",
        "digest": exported.digest,
        "size": exported.size,
        "meta": exported.meta,
    }


def test_an_uploaded_onnx_file_is_checked_then_recorded(
    api, onnx_upload: dict, client: sy.Client
) -> None:  # type: ignore[no-untyped-def, type-arg]
    not_onnx = b"not an onnx model"
    api.post("/models/credit/files", content=not_onnx)
    meta = onnx_upload["meta"]
    cases = [
        ("/models/credit/versions/9/files/onnx", onnx_upload, 404, "not_found"),
        ("/models/nope/versions/1/files/onnx", onnx_upload, 404, "not_found"),
        ("/models/credit/versions/2/files/native", onnx_upload, 422, "invalid_input"),
        (
            "/models/credit/versions/2/files/onnx",
            {**onnx_upload, "serialization": "skops"},
            400,
            "invalid_input",
        ),
        (
            "/models/credit/versions/2/files/onnx",
            {**onnx_upload, "digest": "sha256:" + "0" * 64},
            404,
            "not_found",
        ),
        ("/models/credit/versions/2/files/onnx", {**onnx_upload, "size": 3}, 400, "invalid_input"),
        (
            "/models/credit/versions/2/files/onnx",
            {**onnx_upload, "digest": digest_of(not_onnx), "size": len(not_onnx)},
            400,
            "invalid_input",
        ),
        (
            "/models/credit/versions/2/files/onnx",
            {**onnx_upload, "meta": {k: v for k, v in meta.items() if k != "checked"}},
            400,
            "invalid_input",
        ),
        (
            "/models/credit/versions/2/files/onnx",
            {**onnx_upload, "meta": {**meta, "outputs": ["x"]}},
            400,
            "invalid_input",
        ),
        (
            "/models/credit/versions/2/files/onnx",
            {**onnx_upload, "digest": "md5:1"},
            422,
            "invalid_input",
        ),
        ("/models/credit/versions/2/files/onnx", {**onnx_upload, "extra": 1}, 422, "invalid_input"),
    ]
    for path, body, status, code in cases:
        refused = api.put(path, json=body)
        assert (refused.status_code, refused.json()["error"]["code"]) == (status, code), (
            path,
            refused.text,
        )
        assert refused.json()["error"]["message"]
    assert "onnx" not in client.get_model_version("credit", 2).files

    added = api.put("/models/credit/versions/2/files/onnx", json=onnx_upload)
    assert added.status_code == 200, added.text
    assert added.json()["files"]["onnx"]["digest"] == onnx_upload["digest"]
    download = api.get("/models/credit/versions/2/files/onnx")
    assert digest_of(download.content) == onnx_upload["digest"]
