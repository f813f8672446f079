"""Drift tests by name, each imported on first use; and the automatic choice per column.

A new test is one module defining ``TEST = DriftTest(...)`` plus one line in
``_BUILTIN`` (or a call to :func:`register_test` from outside Shipyard).

Automatic choice ("auto"), after Evidently's data drift preset
----------------------------------------------------------------
With n = the smaller of the two columns' usable value counts:

=============  ====================  ==========================
column kind    n <= 1,000            n > 1,000
=============  ====================  ==========================
numeric        ``ks`` (p < 0.05)      ``wasserstein`` (>= 0.1)
categorical    ``chi_square`` (p < 0.05)  ``jensen_shannon`` (>= 0.1)
=============  ====================  ==========================

Statistical tests suit small samples; on large ones every tiny, harmless
shift becomes "significant", so distances with a fixed threshold take over.
"""

from __future__ import annotations

import importlib

from shipyard.errors import InvalidInput
from shipyard.monitoring._base import DriftTest

__all__ = ["AUTO", "AUTO_THRESHOLD", "auto_test", "available_tests", "get_test", "register_test"]

AUTO = "auto"
#: Samples up to this many values get a statistical test under "auto", larger ones a distance.
AUTO_THRESHOLD = 1_000

_BUILTIN: dict[str, str] = {
    "ks": "shipyard.monitoring._ks:TEST",
    "psi": "shipyard.monitoring._psi:TEST",
    "wasserstein": "shipyard.monitoring._wasserstein:TEST",
    "jensen_shannon": "shipyard.monitoring._jensen_shannon:TEST",
    "chi_square": "shipyard.monitoring._chi_square:TEST",
}
_registered: dict[str, str | DriftTest] = dict(_BUILTIN)


def register_test(name: str, test: str | DriftTest) -> None:
    """Register ``test`` (a DriftTest, or "package.module:ATTRIBUTE" naming one) as ``name``."""
    if not isinstance(name, str) or not name.isidentifier() or name == AUTO:
        raise InvalidInput(
            f"A drift test name must be a Python identifier other than 'auto', got {name!r}."
        )
    _registered[name] = test


def available_tests() -> list[str]:
    """Every registered test name, sorted."""
    return sorted(_registered)


def get_test(name: str) -> DriftTest:
    """The test registered as ``name``, imported on first use."""
    found = _registered.get(name) if isinstance(name, str) else None
    if found is None:
        raise InvalidInput(
            f"Unknown drift test {name!r}.",
            hint=f"Choose one of {available_tests()} or 'auto'.",
        )
    if isinstance(found, str):
        module, _, attribute = found.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if not isinstance(found, DriftTest):
            raise InvalidInput(f"{_registered[name]!r} is not a DriftTest.")
        _registered[name] = found
    return found


def auto_test(kind: str, n: int) -> str:
    """The test "auto" picks for a column of ``kind`` whose smaller side has ``n`` values."""
    small = n <= AUTO_THRESHOLD
    if kind == "numeric":
        return "ks" if small else "wasserstein"
    return "chi_square" if small else "jensen_shannon"
