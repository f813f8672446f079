"""File safety helpers: writes that cannot be half-done, paths that cannot escape.

Two promises the rest of Shipyard builds on:

- :func:`atomic_write` / :func:`atomic_open` write to a temp file in the
  destination's folder, flush and fsync it, ``os.replace`` it into place and
  fsync the folder. A reader sees the old file or the new one, never a mix; a
  crash leaves at most a stray temp file; an exception leaves ``dest`` as it was.
- :func:`safe_relative_path` and :func:`confine` turn a user-given relative
  path (an artifact name such as ``"plots/roc.png"``) into a path that stays
  inside a root, or raise :class:`~shipyard.errors.UnsafePath`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from shipyard.errors import UnsafePath

__all__ = [
    "MAX_PATH_CHARS",
    "atomic_open",
    "atomic_write",
    "confine",
    "create_temp",
    "fsync_dir",
    "make_dirs",
    "safe_relative_path",
]

#: Longest relative path accepted, in characters.
MAX_PATH_CHARS = 1024
#: Longest single component, in UTF-8 bytes: NAME_MAX on Linux and macOS.
_MAX_COMPONENT_BYTES = 255

_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Characters no file name needs: C0/C1 controls and DEL (Cc), line and
# paragraph separators (Zl, Zp), which break logs and terminals, and lone
# surrogates (Cs), which no filesystem or S3 key can encode as UTF-8.
_BAD_CATEGORIES = {
    "Cc": "the control character",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
    "Cs": "the lone surrogate",
}


def safe_relative_path(name: str) -> PurePosixPath:
    """Validate a user-given relative path and return it normalised.

    Accepted: plain names joined by ``/`` (``"plots/roc.png"``); ``.``
    components and repeated or trailing slashes are dropped.

    Refused with :class:`~shipyard.errors.UnsafePath`, saying why:

    - anything but a non-empty ``str`` of at most :data:`MAX_PATH_CHARS`
      characters, or with a component over 255 UTF-8 bytes;
    - absolute paths: a leading ``/`` (also ``//host``) or a drive letter
      (``C:\\x``, ``C:/x``, ``C:x``);
    - any ``..`` component, and any component made only of dots and spaces
      (``...``, ``. .``), which some systems trim down to ``..`` or ``.``;
    - backslashes, NUL and other control characters, line separators, lone
      surrogates;
    - a percent escape: ``%`` followed by two hex digits, in any case. Names are
      taken literally and never URL-decoded here, but another layer (a web
      server, a proxy, S3 tooling) might decode them once or twice. Refusing
      every escape, rather than only ``%2e``/``%2f``/``%5c``/``%00``, also
      refuses double encoding, since ``%252e`` starts with the escape ``%25``.
      A lone ``%`` (``"100%.txt"``) is allowed;
    - a name that turns into one of the above under Unicode NFKC
      normalisation (fullwidth dots U+FF0E, fullwidth solidus U+FF0F), which
      some filesystems and frameworks apply.
    """
    if not isinstance(name, str):
        raise UnsafePath(name, f"expected a str, got {type(name).__name__}")
    _check_text(name, name)
    normalised = unicodedata.normalize("NFKC", name)
    if normalised != name:
        try:
            _check_text(name, normalised)
        except UnsafePath as exc:
            reason = f"{exc.reason} once Unicode-normalised (NFKC) to {normalised!r}"
            raise UnsafePath(name, reason) from None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts:
        raise UnsafePath(name, "it names no file, only the root")
    for part in parts:
        _check_component(name, part)
    return PurePosixPath(*parts)


def _check_text(original: str, text: str) -> None:
    """Whole-path checks on ``text``; errors name ``original``, what the user gave."""
    if not text:
        raise UnsafePath(original, "it is empty")
    if len(text) > MAX_PATH_CHARS:
        raise UnsafePath(original, f"it is {len(text)} characters long, over {MAX_PATH_CHARS}")
    if "\x00" in text:
        raise UnsafePath(original, "it contains a NUL byte")
    for char in text:
        label = _BAD_CATEGORIES.get(unicodedata.category(char))
        if label:
            raise UnsafePath(original, f"it contains {label} U+{ord(char):04X}")
    if "\\" in text:
        raise UnsafePath(original, "it contains a backslash; separate folders with '/'")
    if text.startswith("/"):
        raise UnsafePath(original, "it is absolute; give a path relative to the root")
    if _DRIVE.match(text):
        raise UnsafePath(original, "it starts with a drive letter; give a relative path")
    escape = _PERCENT_ESCAPE.search(text)
    if escape:
        raise UnsafePath(
            original, f"it contains the percent escape {escape.group()!r}; give the name decoded"
        )
    for part in text.split("/"):
        if part == "..":
            raise UnsafePath(original, "it contains a '..' component")
        if part and part != "." and not part.strip(". "):
            raise UnsafePath(original, f"its component {part!r} is only dots and spaces")


def _check_component(original: str, part: str) -> None:
    if len(part.encode("utf-8")) > _MAX_COMPONENT_BYTES:
        raise UnsafePath(
            original, f"its component {part[:20]!r}... is over {_MAX_COMPONENT_BYTES} bytes"
        )


def confine(root: Path, relative: str | PurePosixPath) -> Path:
    """Resolve ``relative`` under ``root`` and prove the result stays inside it.

    The path is first checked with :func:`safe_relative_path`, then resolved
    following symbolic links (the target need not exist), so a symlink inside
    the root that leads out of it is refused with
    :class:`~shipyard.errors.UnsafePath`. Returns the resolved path.

    A symlink created after this check is not caught: the root must not be
    writable by anyone the caller does not trust.
    """
    rel = safe_relative_path(relative if isinstance(relative, str) else relative.as_posix())
    base = Path(root).resolve()
    try:
        target = (base / rel).resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, on Python < 3.13
        raise UnsafePath(str(relative), f"it cannot be resolved ({exc})") from exc
    if not target.is_relative_to(base):
        raise UnsafePath(
            str(relative), f"it leads to {target}, outside {base}, through a symbolic link"
        )
    return target


def fsync_dir(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename, a new file) survive a power loss."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(folder: Path) -> None:
    """``mkdir -p`` that also fsyncs the parent of each folder it creates."""
    missing = []
    current = Path(folder)
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)  # exist_ok: another writer may create it at the same time
        fsync_dir(path.parent)


def create_temp(folder: Path, stem: str = "") -> tuple[int, Path]:
    """Create a new empty file in ``folder`` with a random name; return (fd, path).

    Unlike ``tempfile.mkstemp`` the mode honours the umask (0o666 & ~umask), so
    a file renamed into a shared store is as readable as any other file there.
    """
    make_dirs(folder)
    while True:
        path = Path(folder) / f".{stem[:40]}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # 64 random bits: a clash is a freak, just draw again
            continue
        return fd, path


@contextlib.contextmanager
def atomic_open(dest: Path) -> Iterator[BinaryIO]:
    """Open ``dest`` for binary writing so it appears whole or not at all.

    Missing folders above ``dest`` are created. Writes go to a temp file in
    ``dest``'s folder; on a clean exit it is
    flushed, fsynced and renamed over ``dest`` and the folder is fsynced. If the
    block raises, the temp file is removed and ``dest`` is untouched.
    """
    dest = Path(dest)
    fd, tmp = create_temp(dest.parent, dest.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(dest.parent)


def atomic_write(dest: Path, chunks: Iterable[bytes] | bytes) -> None:
    """Write ``chunks`` (or one bytes object) to ``dest`` atomically; see :func:`atomic_open`."""
    with atomic_open(dest) as fh:
        if isinstance(chunks, bytes | bytearray | memoryview):
            fh.write(chunks)
        else:
            for chunk in chunks:
                fh.write(chunk)
