"""The README keeps up with the code: every setting and every CLI command is documented."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from shipyard.cli import cli
from shipyard.config import SETTINGS

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {heading}' section"
    return match.group(1)


def settings_table(readme: str) -> dict[str, list[str]]:
    """The one table of the Settings section: setting name -> its cells."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section(readme, "Settings").splitlines()
        if line.lstrip().startswith("|")
    ]
    header, separator, *body = rows
    assert header[:3] == ["setting", "environment variable", "default"], header
    assert all(set(cell) <= set("-: ") for cell in separator), separator
    return {row[0].strip("`"): row for row in body}


def test_the_settings_section_has_exactly_one_table(readme: str) -> None:
    lines = section(readme, "Settings").splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
    ]
    assert len(starts) == 1


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_is_in_the_settings_table(readme: str, setting: Any) -> None:
    table = settings_table(readme)
    assert setting.name in table, f"setting {setting.name!r} missing from README's table"
    _, env_var, default, meaning = table[setting.name]
    assert env_var == f"`SHIPYARD_{setting.name.upper()}`"
    if setting.default:
        assert setting.default in default, f"{setting.name}: default {setting.default!r}"
    else:
        assert default == "empty"
    assert meaning == setting.help


def test_the_settings_table_lists_no_unknown_setting(readme: str) -> None:
    assert set(settings_table(readme)) == {s.name for s in SETTINGS}


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path below ``group``: ("runs",), ("runs", "list"), ..."""
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


ALL_COMMANDS = sorted(commands(cli))


def test_the_cli_has_commands() -> None:
    assert ("runs", "list") in ALL_COMMANDS


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_cli_command_is_in_the_readme(readme: str, path: tuple[str, ...]) -> None:
    assert f"shipyard {' '.join(path)}" in section(readme, "Command line")


@pytest.mark.parametrize(
    "option",
    sorted(opt for param in cli.params for opt in param.opts if opt.startswith("--")),
)
def test_every_global_option_is_in_the_readme(readme: str, option: str) -> None:
    assert option in section(readme, "Command line")


def test_the_readme_gives_the_two_quick_start_commands(readme: str) -> None:
    quick_start = section(readme, "Quick start")
    assert "    scripts/example\n" in quick_start
    assert "    scripts/test\n" in quick_start
    root = README.parent
    assert (root / "scripts" / "example").is_file()
    assert (root / "scripts" / "test").is_file()
