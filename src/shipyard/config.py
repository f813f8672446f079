"""One typed settings object, resolved when needed, never frozen at import.

Each setting is looked up in this order, first match wins:

1. the environment (``SHIPYARD_<NAME>``),
2. the project file ``shipyard.toml`` in the working directory,
3. the user file ``$XDG_CONFIG_HOME/shipyard/config.toml`` (``~/.config/...``),
4. the default.

The README's settings table is checked against :data:`SETTINGS` by a test.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.errors import ConfigError

__all__ = ["SETTINGS", "Settings"]

PROJECT_FILE = "shipyard.toml"


@dataclasses.dataclass(frozen=True)
class _Setting:
    name: str
    parse: Callable[[str], Any]
    help: str
    default: str


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _host_list(raw: str) -> tuple[str, ...]:
    """Comma-separated entries, each a host name, an IP address or network, with an optional port."""
    entries = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    for entry in entries:
        if "://" in entry or "@" in entry or any(c.isspace() for c in entry):
            raise ValueError(
                f"{entry!r} is not a host name, HOST:PORT, an IP address or a network "
                "such as 10.0.0.0/8"
            )
    return entries


SETTINGS: tuple[_Setting, ...] = (
    _Setting("home", str, "Folder for the embedded store and blobs.", "./.shipyard"),
    _Setting(
        "uri",
        str,
        "Metadata store: `sqlite:///path.db` or `postgresql+psycopg://user@host/db`.",
        "sqlite:///<home>/shipyard.db",
    ),
    _Setting(
        "artifacts",
        str,
        "Blob store root: a folder, `file://` URL or `s3://bucket/prefix`.",
        "<home>/blobs",
    ),
    _Setting(
        "s3_endpoint_url",
        str,
        "Endpoint of an S3-compatible object store (MinIO, Ceph, moto); empty for AWS.",
        "",
    ),
    _Setting("actor", str, "Name recorded as the actor of audit events.", "the OS user name"),
    _Setting(
        "token",
        str,
        "API token sent to a Shipyard server when `uri` is `http(s)://...` (from `shipyard tokens create`).",
        "",
    ),
    _Setting(
        "flush_interval",
        _positive_float,
        "Seconds between background flushes of buffered metric points.",
        "1.0",
    ),
    _Setting(
        "flush_size",
        _positive_int,
        "Buffered metric points that trigger a flush on the logging thread.",
        "1000",
    ),
    _Setting(
        "heartbeat_interval",
        _positive_float,
        "Seconds between heartbeats of a run started with `start_run`.",
        "10",
    ),
    _Setting(
        "heartbeat_timeout",
        _positive_float,
        "Seconds without a heartbeat after which a RUNNING run shows as FAILED.",
        "60",
    ),
    _Setting(
        "webhook_allow",
        _host_list,
        "Hosts alert webhooks may call, comma-separated: `name`, `name:port`, an IP address or "
        "network; private and loopback addresses only when listed as addresses.",
        "",
    ),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    uri: str
    artifacts: str
    s3_endpoint_url: str
    actor: str
    #: Never shown in a repr: it is a credential.
    token: str = dataclasses.field(repr=False)
    flush_interval: float
    flush_size: int
    heartbeat_interval: float
    heartbeat_timeout: float
    webhook_allow: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Resolve every setting; ``overrides`` (by setting name) win over everything."""
        environ = os.environ if environ is None else environ
        cwd = Path.cwd() if cwd is None else Path(cwd)
        project_file = cwd / PROJECT_FILE
        project = _read_toml(project_file)
        config_home = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        user_file = Path(config_home) / "shipyard" / "config.toml"
        user = _read_toml(user_file)

        raw: dict[str, Any] = {}
        for setting in SETTINGS:
            if overrides.get(setting.name) is not None:
                raw[setting.name] = overrides[setting.name]
                continue
            env_name = f"SHIPYARD_{setting.name.upper()}"
            for source, value in (
                (env_name, environ.get(env_name)),
                (project_file, project.get(setting.name)),
                (user_file, user.get(setting.name)),
            ):
                if value is not None and value != "":
                    raw[setting.name] = _parse(setting, str(value), str(source))
                    break
            else:
                raw[setting.name] = None

        home = Path(raw["home"] or ".shipyard")
        if not home.is_absolute():
            home = cwd / home
        return cls(
            home=home,
            uri=raw["uri"] or f"sqlite:///{home / 'shipyard.db'}",
            artifacts=raw["artifacts"] or str(home / "blobs"),
            s3_endpoint_url=raw["s3_endpoint_url"] or "",
            actor=raw["actor"] or _os_user(),
            token=raw["token"] or "",
            flush_interval=raw["flush_interval"] or 1.0,
            flush_size=raw["flush_size"] or 1000,
            heartbeat_interval=raw["heartbeat_interval"] or 10.0,
            heartbeat_timeout=raw["heartbeat_timeout"] or 60.0,
            webhook_allow=raw["webhook_allow"] or (),
        )


def _parse(setting: _Setting, value: str, source: str) -> Any:
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise ConfigError(
            f"Setting {setting.name!r} from {source} is {value!r}: {exc}.",
            hint=f"Expected: {setting.help}",
        ) from exc


# Settings are resolved at every start_run; a file is parsed again only when it changed.
_parsed: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"Cannot read settings file {str(path)!r}: {exc}.") from exc
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    cached = _parsed.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read settings file {str(path)!r}: {exc}.") from exc
    known = {s.name for s in SETTINGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {', '.join(unknown)} in {str(path)!r}.",
            hint=f"Known settings: {', '.join(sorted(known))}.",
        )
    _parsed[path] = (stamp, data)
    return data


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
