"""Settings: environment > project file > user file > default, with helpful errors."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import PROJECT_FILE, SETTINGS, Settings
from shipyard.errors import ConfigError, ShipyardError

# One value per source for every setting: (user file, project file, environment),
# as they are written in TOML / the environment, and what each must resolve to.
LAYERS: dict[str, tuple[tuple[Any, Any, str], tuple[Any, Any, Any]]] = {
    "home": (
        ("/srv/user", "/srv/project", "/srv/env"),
        tuple(map(Path, ("/srv/user", "/srv/project", "/srv/env"))),
    ),
    "uri": (
        ("sqlite:////u.db", "sqlite:////p.db", "postgresql+psycopg://me@db/x"),
        ("sqlite:////u.db", "sqlite:////p.db", "postgresql+psycopg://me@db/x"),
    ),
    "artifacts": (("/u/blobs", "/p/blobs", "s3://bucket/prefix"),) * 2,
    "s3_endpoint_url": (("http://u:9000", "http://p:9000", "http://127.0.0.1:5000"),) * 2,
    "actor": (("user-file", "project-file", "env"),) * 2,
    "token": (("sy_u_1", "sy_p_2", "sy_e_3"),) * 2,
    "flush_interval": ((0.5, 2, "3.25"), (0.5, 2.0, 3.25)),
    "flush_size": ((10, 20, "30"), (10, 20, 30)),
    "heartbeat_interval": ((1.5, 2.5, "3.5"), (1.5, 2.5, 3.5)),
    "heartbeat_timeout": ((100, 200, "300"), (100.0, 200.0, 300.0)),
    "webhook_allow": (
        ("u.example", "p.example:8443", "e.example, 10.0.0.0/8"),
        (("u.example",), ("p.example:8443",), ("e.example", "10.0.0.0/8")),
    ),
}


def toml_value(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def write_toml(path: Path, values: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key} = {toml_value(v)}\n" for key, v in values.items()))
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """A working directory (project file) and an XDG config home (user file), both empty."""
    found = {"cwd": tmp_path / "project", "xdg": tmp_path / "xdg"}
    for path in found.values():
        path.mkdir()
    return found


def load(dirs: dict[str, Path], env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    environ = {"XDG_CONFIG_HOME": str(dirs["xdg"]), **(env or {})}
    return Settings.load(environ=environ, cwd=dirs["cwd"], **overrides)


def user_file(dirs: dict[str, Path]) -> Path:
    return dirs["xdg"] / "shipyard" / "config.toml"


def project_file(dirs: dict[str, Path]) -> Path:
    return dirs["cwd"] / PROJECT_FILE


def test_layers_table_covers_every_setting() -> None:
    assert set(LAYERS) == {s.name for s in SETTINGS}
    assert set(LAYERS) == {f.name for f in Settings.__dataclass_fields__.values()}


def test_defaults_live_under_home_in_the_working_directory(dirs: dict[str, Path]) -> None:
    settings = load(dirs)
    home = dirs["cwd"] / ".shipyard"
    assert settings.home == home
    assert settings.uri == f"sqlite:///{home / 'shipyard.db'}"
    assert settings.artifacts == str(home / "blobs")
    assert settings.s3_endpoint_url == ""
    assert settings.actor == getpass.getuser()
    assert settings.flush_interval == 1.0
    assert settings.flush_size == 1000
    assert settings.heartbeat_interval == 10.0
    assert settings.heartbeat_timeout == 60.0


def test_uri_and_artifacts_follow_home(dirs: dict[str, Path]) -> None:
    settings = load(dirs, {"SHIPYARD_HOME": "/data/sy"})
    assert settings.uri == "sqlite:////data/sy/shipyard.db"
    assert settings.artifacts == "/data/sy/blobs"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_environment_beats_project_file_beats_user_file_beats_default(
    dirs: dict[str, Path], name: str
) -> None:
    (user, project, env), (from_user, from_project, from_env) = LAYERS[name]
    default = getattr(load(dirs), name)
    env_name = f"SHIPYARD_{name.upper()}"

    write_toml(user_file(dirs), {name: user})
    assert getattr(load(dirs), name) == from_user

    write_toml(project_file(dirs), {name: project})
    assert getattr(load(dirs), name) == from_project

    assert getattr(load(dirs, {env_name: env}), name) == from_env

    project_file(dirs).unlink()
    user_file(dirs).unlink()
    assert getattr(load(dirs), name) == default
    assert default not in (from_user, from_project, from_env)


def test_an_empty_environment_value_counts_as_unset(dirs: dict[str, Path]) -> None:
    write_toml(project_file(dirs), {"flush_size": 20})
    assert load(dirs, {"SHIPYARD_FLUSH_SIZE": ""}).flush_size == 20


def test_overrides_beat_the_environment(dirs: dict[str, Path]) -> None:
    settings = load(dirs, {"SHIPYARD_URI": "sqlite:////env.db"}, uri="sqlite:////override.db")
    assert settings.uri == "sqlite:////override.db"
    # None means "not given": the environment applies.
    assert load(dirs, {"SHIPYARD_URI": "sqlite:////env.db"}, uri=None).uri == "sqlite:////env.db"


def test_the_injected_environment_is_the_only_one_read(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_FLUSH_SIZE", "7")
    assert load(dirs).flush_size == 1000


def test_the_process_environment_is_read_at_load_time_not_import_time(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["xdg"]))
    monkeypatch.setenv("SHIPYARD_FLUSH_SIZE", "7")
    assert Settings.load(cwd=dirs["cwd"]).flush_size == 7
    monkeypatch.setenv("SHIPYARD_FLUSH_SIZE", "8")
    assert Settings.load(cwd=dirs["cwd"]).flush_size == 8


def test_relative_home_is_resolved_against_the_working_directory(
    dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load(dirs, {"SHIPYARD_HOME": "state/sy"})
    assert settings.home == dirs["cwd"] / "state" / "sy"
    assert settings.home.is_absolute()
    assert settings.uri == f"sqlite:///{dirs['cwd'] / 'state' / 'sy' / 'shipyard.db'}"

    # Without an injected cwd, the process's working directory.
    monkeypatch.chdir(dirs["cwd"])
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["xdg"]))
    monkeypatch.setenv("SHIPYARD_HOME", "rel")
    assert Settings.load().home == dirs["cwd"] / "rel"


@pytest.mark.parametrize(
    ("name", "raw", "why"),
    [
        ("flush_size", "0", "must be greater than 0"),
        ("flush_size", "-3", "must be greater than 0"),
        ("flush_size", "many", "invalid literal"),
        ("flush_size", "1.5", "invalid literal"),
        ("flush_interval", "0", "must be greater than 0"),
        ("flush_interval", "soon", "could not convert"),
        ("heartbeat_interval", "-1", "must be greater than 0"),
        ("heartbeat_timeout", "nan", "must be greater than 0"),
        ("webhook_allow", "https://hooks.example.com", "is not a host name"),
    ],
)
def test_a_bad_environment_value_names_the_setting_and_the_variable(
    dirs: dict[str, Path], name: str, raw: str, why: str
) -> None:
    env_name = f"SHIPYARD_{name.upper()}"
    with pytest.raises(ConfigError) as caught:
        load(dirs, {env_name: raw})
    message = str(caught.value)
    assert repr(name) in message
    assert env_name in message
    assert repr(raw) in message
    assert why in message
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("Expected: ")


def test_a_bad_project_file_value_names_the_file(dirs: dict[str, Path]) -> None:
    path = write_toml(project_file(dirs), {"heartbeat_timeout": -5})
    with pytest.raises(ConfigError, match="'heartbeat_timeout'") as caught:
        load(dirs)
    assert str(path) in str(caught.value)


def test_a_bad_user_file_value_names_the_user_file(dirs: dict[str, Path]) -> None:
    write_toml(user_file(dirs), {"flush_size": 0})
    with pytest.raises(ConfigError) as info:
        load(dirs)
    assert f"'flush_size' from {user_file(dirs)}" in str(info.value)


def test_a_bad_value_is_not_reported_when_a_higher_source_wins(dirs: dict[str, Path]) -> None:
    write_toml(user_file(dirs), {"flush_size": 0})
    assert load(dirs, {"SHIPYARD_FLUSH_SIZE": "5"}).flush_size == 5


@pytest.mark.parametrize("which", [project_file, user_file])
def test_an_unknown_key_in_a_file_is_an_error(dirs: dict[str, Path], which: Any) -> None:
    path = write_toml(which(dirs), {"flush_size": 5, "flush_sise": 5})
    with pytest.raises(ConfigError) as caught:
        load(dirs)
    assert "flush_sise" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.hint is not None
    assert "flush_size" in caught.value.hint  # the known names, so the typo is easy to spot


def test_an_unreadable_file_is_a_config_error(dirs: dict[str, Path]) -> None:
    path = project_file(dirs)
    path.write_text("flush_size = = 3\n")
    with pytest.raises(ConfigError, match="Cannot read settings file") as caught:
        load(dirs)
    assert str(path) in str(caught.value)


def test_config_error_is_a_shipyard_error_and_a_value_error(dirs: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(dirs, {"SHIPYARD_FLUSH_SIZE": "0"})
    assert isinstance(caught.value, ShipyardError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "config_error"


def test_settings_are_frozen(dirs: dict[str, Path]) -> None:
    settings = load(dirs)
    with pytest.raises(AttributeError):
        settings.flush_size = 3  # type: ignore[misc]
