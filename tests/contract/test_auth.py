"""A remote client against a server with --auth: its token decides who it is and what it may do."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import shipyard as sy
from shipyard.errors import PermissionDenied
from shipyard.server import create_app


def test_tokens_and_roles_over_http(
    backing: sy.Client, serve: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backing.create_user("ann", "editor")
    backing.create_user("vic", "viewer")
    _, editor_token = backing.create_token("ann")
    _, viewer_token = backing.create_token("vic")
    url = serve(create_app(backing, auth=True))
    monkeypatch.setenv("SHIPYARD_URI", url)

    anonymous = sy.Client()
    with pytest.raises(PermissionDenied, match="SHIPYARD_TOKEN"):
        anonymous.list_experiments()

    monkeypatch.setenv("SHIPYARD_TOKEN", "sy_nope_nope")
    with pytest.raises(PermissionDenied, match="not valid"):
        sy.Client().list_experiments()

    monkeypatch.setenv("SHIPYARD_TOKEN", editor_token)
    editor = sy.Client()
    run = editor.create_run("secure", name="by-ann")
    editor.log_param(run.run_id, "a", 1)
    with sy.start_run(experiment="secure"):  # the fluent API reads the token too
        sy.log_metric("m", 1.0)
    assert run.created_by == "ann"
    creations = editor.audit_events("run", run.run_id)
    assert {e.actor for e in creations} == {"ann"}

    monkeypatch.setenv("SHIPYARD_TOKEN", viewer_token)
    viewer = sy.Client()
    assert viewer.get_run(run.run_id).params == {"a": "1"}  # a viewer reads
    with pytest.raises(PermissionDenied, match="editor"):
        viewer.create_run("secure")
    with pytest.raises(PermissionDenied):
        viewer.log_param(run.run_id, "b", 2)
    assert "b" not in backing.get_run(run.run_id).params
