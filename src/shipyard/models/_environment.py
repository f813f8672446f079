"""The Python and package versions a model was saved with, and a warning when they differ.

A model saved with scikit-learn 1.5 may load under 1.6 with a different
internal layout, or not load at all; the registry records the versions that
matter when a model is logged (:func:`capture`) and compares them with the
running interpreter when it is loaded (:func:`check`). A mismatch warns rather
than fails: most minor upgrades are harmless, and the user decides.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["EnvironmentMismatchWarning", "capture", "check", "distributions_of"]


class EnvironmentMismatchWarning(UserWarning):
    """The running Python or packages differ from those a model was saved with."""


_warned: set[str] = set()
_warned_lock = threading.Lock()


def capture(packages: Iterable[str]) -> dict[str, Any]:
    """Versions of Python and of the installed distributions among ``packages``.

    Returns ``{"python": "3.11.7", "packages": {"scikit-learn": "1.5.2", ...}}``
    with names sorted. ``numpy`` is always included when installed, since nearly
    every model keeps its weights in numpy arrays. A name that is not installed
    is left out: there is no version to record.
    """
    found: dict[str, str] = {}
    for name in {*packages, "numpy"}:
        version = _installed_version(name)
        if version is not None:
            found[name] = version
    return {"python": platform.python_version(), "packages": dict(sorted(found.items()))}


def check(recorded: Mapping[str, Any], *, label: str) -> list[str]:
    """Compare ``recorded`` (from :func:`capture`) with the running interpreter.

    Returns one readable line per mismatch: Python major.minor, a package at
    another version, or a package missing. When there is any, warns once per
    ``label`` (such as ``"models:/credit/3"``) per process with
    :class:`EnvironmentMismatchWarning`, listing all of them, so a server that
    loads the same version repeatedly does not flood its log.
    """
    problems: list[str] = []
    python = recorded.get("python")
    running = platform.python_version()
    if python and _major_minor(str(python)) != _major_minor(running):
        problems.append(f"python: saved with {python}, running {running}")
    for name, version in sorted((recorded.get("packages") or {}).items()):
        installed = _installed_version(name)
        if installed is None:
            problems.append(f"{name}: saved with {version}, not installed")
        elif installed != version:
            problems.append(f"{name}: saved with {version}, installed {installed}")
    if problems:
        with _warned_lock:
            first = label not in _warned
            _warned.add(label)
        if first:
            warnings.warn(
                f"{label} was saved in another environment ({'; '.join(problems)}). "
                "It may fail to load or predict differently; install the saved "
                "versions to reproduce it exactly.",
                EnvironmentMismatchWarning,
                stacklevel=3,  # the caller of the function that loads the model
            )
    return problems


def distributions_of(modules: Iterable[str]) -> list[str]:
    """Distribution names that provide the top-level ``modules`` (sklearn → scikit-learn).

    The import name and the name to install often differ (``sklearn`` is
    ``scikit-learn``, ``xgboost`` may be ``xgboost-cpu``); a module no installed
    distribution provides (the standard library, a script) is left out.
    """
    table = _packages_distributions()
    names = {dist for module in modules for dist in table.get(module.partition(".")[0], ())}
    return sorted(names)


@functools.cache
def _packages_distributions() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
