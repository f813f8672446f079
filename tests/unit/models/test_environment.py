"""Environment capture, and one warning per model when the running versions differ."""

from __future__ import annotations

import importlib.metadata
import platform
import uuid
import warnings

import pytest

from shipyard.models._environment import (
    EnvironmentMismatchWarning,
    capture,
    check,
    distributions_of,
)


def label() -> str:
    """A label no other test used: the once-per-label memory lasts the whole process."""
    return f"models:/m-{uuid.uuid4().hex[:8]}/1"


def test_capture_records_python_and_installed_versions_and_always_numpy() -> None:
    env = capture(["scikit-learn", "not-a-distribution-xyz"])
    assert env["python"] == platform.python_version()
    assert env["packages"] == {
        "numpy": importlib.metadata.version("numpy"),
        "scikit-learn": importlib.metadata.version("scikit-learn"),
    }


def test_the_same_environment_gives_no_mismatch_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check(capture(["scikit-learn", "skops"]), label=label()) == []


def test_an_older_version_warns_once_per_label_with_both_versions() -> None:
    installed = importlib.metadata.version("scikit-learn")
    recorded = {"python": platform.python_version(), "packages": {"scikit-learn": "0.1.0"}}
    name = label()
    with pytest.warns(EnvironmentMismatchWarning, match=rf"{name}.*0\.1\.0.*{installed}"):
        problems = check(recorded, label=name)
    assert problems == [f"scikit-learn: saved with 0.1.0, installed {installed}"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check(recorded, label=name) == problems  # reported again, not warned again
    with pytest.warns(EnvironmentMismatchWarning):
        check(recorded, label=label())


def test_every_mismatch_is_listed_in_one_warning() -> None:
    recorded = {
        "python": "2.7.18",
        "packages": {"numpy": "0.0.1", "not-a-distribution-xyz": "1.0"},
    }
    with pytest.warns(EnvironmentMismatchWarning) as caught:
        problems = check(recorded, label=label())
    assert len(caught) == 1
    assert problems == [
        f"python: saved with 2.7.18, running {platform.python_version()}",
        "not-a-distribution-xyz: saved with 1.0, not installed",
        f"numpy: saved with 0.0.1, installed {importlib.metadata.version('numpy')}",
    ]
    message = str(caught[0].message)
    assert all(problem in message for problem in problems)


def test_a_patch_release_of_python_is_not_a_mismatch() -> None:
    major, minor, _ = platform.python_version_tuple()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check({"python": f"{major}.{minor}.0", "packages": {}}, label=label()) == []


def test_distributions_are_found_from_import_names() -> None:
    assert distributions_of(["sklearn.linear_model", "numpy", "json"]) == ["numpy", "scikit-learn"]
