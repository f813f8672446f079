"""Dependencies point one way, and the public face stays small.

Each check imports in a fresh interpreter, so what this test process has
imported already cannot hide a stray import.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shipyard

SRC = Path(shipyard.__file__).parent

#: Never loaded by ``import shipyard``: slow to import, or optional extras.
HEAVY = ("fastapi", "pandas", "ray", "boto3", "botocore", "s3fs", "sklearn", "numpy")
#: Face libraries: only ``shipyard.cli`` / ``server`` / ``ui`` may use them.
FACES = ("click", "rich", "fastapi", "starlette", "uvicorn")
DOMAIN_MODULES = (
    "shipyard.tracking",
    "shipyard.data",
    "shipyard.store",
    "shipyard.blobs",
    "shipyard.governance",
    "shipyard.governance.lineage",
    "shipyard.models",
    "shipyard.monitoring",
)


def loaded_after(code: str, **env: str) -> set[str]:
    """Top-level package names in ``sys.modules`` after running ``code`` in a fresh python."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json as _json, sys as _sys
        print(_json.dumps(sorted({name.split(".")[0] for name in _sys.modules})))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**_base_env(), **env},
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}


def test_import_shipyard_loads_no_heavy_or_optional_dependency() -> None:
    loaded = loaded_after("import shipyard")
    assert not loaded & set(HEAVY), f"import shipyard loaded {sorted(loaded & set(HEAVY))}"


def test_import_shipyard_loads_no_database_layer_or_face() -> None:
    loaded = loaded_after("import shipyard")
    unwanted = {"sqlalchemy", "alembic", *FACES}
    assert not loaded & unwanted, f"import shipyard loaded {sorted(loaded & unwanted)}"


def test_the_cli_starts_without_rich_or_a_heavy_dependency() -> None:
    loaded = loaded_after("import shipyard.cli")
    unwanted = {"rich", *HEAVY}
    assert not loaded & unwanted, f"import shipyard.cli loaded {sorted(loaded & unwanted)}"


#: What a domain module may load of HEAVY: datasets are Arrow and numpy by nature.
ALLOWED_HEAVY = {"shipyard.data": {"numpy"}, "shipyard.monitoring": {"numpy"}}


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_domain_modules_import_no_face(module: str) -> None:
    loaded = loaded_after(f"import {module}")
    heavy = set(HEAVY) - ALLOWED_HEAVY.get(module, set())
    assert not loaded & set(FACES), f"import {module} loaded {sorted(loaded & set(FACES))}"
    assert not loaded & heavy, f"import {module} loaded {sorted(loaded & heavy)}"


def test_tracking_a_run_loads_no_face_and_no_heavy_dependency(tmp_path: Path) -> None:
    artifact = tmp_path / "notes.txt"
    artifact.write_text("hello\n")
    loaded = loaded_after(
        f"""
        import shipyard as sy
        with sy.start_run(experiment="e", tags={{"t": "1"}}):
            sy.log_params({{"a": 1}})
            sy.log_metric("m", 0.5, step=1)
            sy.log_artifact({str(artifact)!r})
        assert len(sy.Client().search_runs("e", order_by=["metrics.m DESC"]).runs) == 1
        """,
        SHIPYARD_HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg"),
    )
    unwanted = set(FACES) | set(HEAVY)
    assert not loaded & unwanted, f"tracking loaded {sorted(loaded & unwanted)}"


# ----------------------------------------------------------------------- __all__


def _defined_public_names() -> set[str]:
    """Public names that ``shipyard/__init__.py`` binds itself or imports from shipyard.

    Imports from outside the package (typing, importlib) are plumbing, not exports;
    imports under ``if TYPE_CHECKING:`` declare the lazily loaded exports; a dunder
    counts only when imported from shipyard (``__version__``), not module hooks
    such as ``__getattr__``.
    """
    tree = ast.parse((SRC / "__init__.py").read_text())
    names: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shipyard"):
                imported = (alias.asname or alias.name for alias in node.names)
                names.update(n for n in imported if not n.startswith("_") or n.endswith("__"))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not node.name.startswith("_"):
                    names.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(
                    t.id for t in targets if isinstance(t, ast.Name) and not t.id.startswith("_")
                )

    visit(tree.body)
    return names


def test_all_is_sorted() -> None:
    assert shipyard.__all__ == sorted(shipyard.__all__)


def test_all_has_no_duplicates_and_stays_small() -> None:
    assert len(set(shipyard.__all__)) == len(shipyard.__all__)
    assert len(shipyard.__all__) <= 40, (
        "about a dozen names per domain (tracking, data, models, serving and monitoring)"
    )


def test_all_lists_every_public_name_the_package_defines() -> None:
    missing = _defined_public_names() - set(shipyard.__all__)
    assert not missing, f"public in shipyard/__init__.py but not in __all__: {sorted(missing)}"


def test_every_name_in_all_exists_in_a_fresh_interpreter() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import shipyard\n"
            "missing = [n for n in shipyard.__all__ if not hasattr(shipyard, n)]\n"
            "assert not missing, missing\n"
            "from shipyard import *  # noqa: F403\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_base_env(),
    )
    assert result.returncode == 0, result.stderr


def test_no_public_name_is_reachable_but_unlisted() -> None:
    """After every export is loaded, shipyard's namespace holds no other public object."""
    for name in shipyard.__all__:
        getattr(shipyard, name)
    stray = {
        name
        for name, value in vars(shipyard).items()
        if not name.startswith("_")
        and name not in shipyard.__all__
        and not isinstance(value, type(shipyard))  # submodules, e.g. shipyard.config
        and name != "TYPE_CHECKING"
        and getattr(value, "__module__", "shipyard").startswith("shipyard")
    }
    assert not stray, f"public but not in __all__: {sorted(stray)}"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = shipyard.not_a_name
