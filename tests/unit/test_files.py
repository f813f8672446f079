"""File safety helpers: safe_relative_path, confine, atomic_write / atomic_open."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard._files import atomic_open, atomic_write, confine, safe_relative_path
from shipyard.errors import InvalidInput, UnsafePath
from traversal import TRAVERSAL_CORPUS, TRAVERSAL_REASONS

GOOD_NAMES = {
    "model.pkl": "model.pkl",
    "plots/roc.png": "plots/roc.png",
    "a/./b//c/": "a/b/c",
    "./metrics.json": "metrics.json",
    ".hidden": ".hidden",
    "...a/b..": "...a/b..",
    "a b/c d.txt": "a b/c d.txt",
    "100%.txt": "100%.txt",
    "50%off/%zz": "50%off/%zz",
    "daten/größe.csv": "daten/größe.csv",
    "C/x": "C/x",
    "step:10/loss": "step:10/loss",
    "~/notes": "~/notes",
    "a" * 255: "a" * 255,
}
PLAIN_NAME = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,40}", fullmatch=True)
HOSTILE_PIECES = [
    "..",
    ".",
    "",
    " ",
    "a",
    "%2e",
    "%2f",
    "%25",
    "\\",
    "/",
    ":",
    "C:",
    "\x00",
    "\uff0e",
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    return folder


def _inside(path: Path, root: Path) -> bool:
    return path.is_relative_to(root.resolve())


# --- safe_relative_path and confine refuse every hostile name ----------------------


@pytest.mark.parametrize("name", TRAVERSAL_CORPUS, ids=[repr(n)[:40] for n in TRAVERSAL_CORPUS])
def test_every_corpus_entry_is_refused(name: str, root: Path) -> None:
    with pytest.raises(UnsafePath) as caught:
        safe_relative_path(name)
    assert caught.value.path == name
    assert caught.value.reason in str(caught.value)
    with pytest.raises(UnsafePath):
        confine(root, name)


def test_the_corpus_is_plain_strings_with_reasons() -> None:
    assert all(isinstance(name, str) for name in TRAVERSAL_CORPUS)
    assert all(TRAVERSAL_REASONS[name] for name in TRAVERSAL_CORPUS)
    assert len(set(TRAVERSAL_CORPUS)) == len(TRAVERSAL_CORPUS)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        (".", "names no file"),
        ("../x", "'..' component"),
        ("/etc/passwd", "absolute"),
        ("C:/x", "drive letter"),
        ("a\\b", "backslash"),
        ("%2e%2e/x", "percent escape '%2e'"),
        ("%252e%252e/x", "percent escape '%25'"),
        ("x\x00y", "NUL"),
        ("a\nb", "control character U+000A"),
        ("...", "only dots and spaces"),
        ("a" * 1025, "1025 characters long, over 1024"),
        ("x" * 256, "over 255 bytes"),
        ("\uff0e\uff0e/x", "once Unicode-normalised (NFKC) to '../x'"),
    ],
)
def test_the_refusal_says_why(name: str, reason: str) -> None:
    with pytest.raises(UnsafePath, match="Refused path") as caught:
        safe_relative_path(name)
    assert reason in caught.value.reason
    assert isinstance(caught.value, InvalidInput)
    assert isinstance(caught.value, ValueError)
    assert caught.value.hint  # tells how to fix it


@pytest.mark.parametrize("name", [None, b"a/b", 3, PurePosixPath("a")])
def test_a_non_string_is_refused(name: object) -> None:
    with pytest.raises(UnsafePath, match="expected a str"):
        safe_relative_path(name)  # type: ignore[arg-type]


# --- good names are accepted and normalised ------------------------------------


@pytest.mark.parametrize(("name", "normalised"), GOOD_NAMES.items())
def test_good_names_are_accepted_and_normalised(name: str, normalised: str, root: Path) -> None:
    assert safe_relative_path(name) == PurePosixPath(normalised)
    assert confine(root, name) == root.resolve() / normalised


def test_confine_takes_a_pure_posix_path(root: Path) -> None:
    assert confine(root, PurePosixPath("a/b.txt")) == root.resolve() / "a" / "b.txt"
    with pytest.raises(UnsafePath):
        confine(root, PurePosixPath("../b.txt"))


@given(parts=st.lists(PLAIN_NAME, min_size=1, max_size=8))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_plain_names_are_accepted_and_stay_inside_the_root(parts: list[str], root: Path) -> None:
    name = "/".join(parts)
    if any(not part.strip(".") for part in parts):
        return  # "." and ".." match the pattern but are not plain names
    assert safe_relative_path(name) == PurePosixPath(name)
    assert confine(root, name) == root.resolve().joinpath(*parts)


@given(name=st.one_of(st.text(), st.lists(st.sampled_from(HOSTILE_PIECES)).map("/".join)))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_name_is_refused_or_stays_inside_the_root(name: str, root: Path) -> None:
    try:
        relative = safe_relative_path(name)
    except UnsafePath:
        return
    assert not relative.is_absolute()
    assert ".." not in relative.parts
    assert _inside(confine(root, name), root)


# --- confine follows symbolic links --------------------------------------------


def test_a_symlink_leading_out_of_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file-link").symlink_to(tmp_path / "secret.txt")
    for name in ("link", "link/x", "link/deep/new.txt", "file-link"):
        with pytest.raises(UnsafePath, match="outside"):
            confine(root, name)


def test_a_symlink_inside_the_root_is_followed(root: Path) -> None:
    (root / "real").mkdir()
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert confine(root, "alias/x.txt") == root.resolve() / "real" / "x.txt"


def test_a_symlinked_root_is_resolved_first(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root, target_is_directory=True)
    assert confine(tmp_path / "root-link", "a.txt") == root.resolve() / "a.txt"


def test_a_symlink_loop_is_refused(root: Path) -> None:
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(UnsafePath):
        confine(root, "loop/x")


# --- atomic_write and atomic_open ----------------------------------------------


def test_atomic_write_writes_bytes_and_chunks(tmp_path: Path) -> None:
    atomic_write(tmp_path / "one.bin", b"whole")
    atomic_write(tmp_path / "many.bin", (bytes([i]) * 3 for i in range(4)))
    assert (tmp_path / "one.bin").read_bytes() == b"whole"
    assert (
        tmp_path / "many.bin"
    ).read_bytes() == b"\x00" * 3 + b"\x01" * 3 + b"\x02" * 3 + b"\x03" * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.bin", "one.bin"]


def test_atomic_write_replaces_an_existing_file(tmp_path: Path) -> None:
    dest = tmp_path / "dest.txt"
    dest.write_bytes(b"a longer old version")
    atomic_write(dest, b"new")
    assert dest.read_bytes() == b"new"


def test_atomic_write_creates_missing_folders(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a" / "b" / "c.txt", b"deep")
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"deep"


def _failing_chunks():  # type: ignore[no-untyped-def]
    yield b"partial "
    raise RuntimeError("source failed")


@pytest.mark.parametrize("existing", [b"old contents", None])
def test_atomic_write_leaves_dest_untouched_on_exception(
    tmp_path: Path, existing: bytes | None
) -> None:
    dest = tmp_path / "dest.txt"
    if existing is not None:
        dest.write_bytes(existing)
    with pytest.raises(RuntimeError, match="source failed"):
        atomic_write(dest, _failing_chunks())
    assert (dest.read_bytes() if dest.exists() else None) == existing
    assert [p.name for p in tmp_path.iterdir()] == ([] if existing is None else ["dest.txt"])


def _write_half_then_interrupt(dest: Path) -> None:
    with atomic_open(dest) as fh:
        fh.write(b"new, half written")
        raise KeyboardInterrupt


def test_atomic_open_leaves_dest_untouched_on_exception(tmp_path: Path) -> None:
    dest = tmp_path / "dest.txt"
    dest.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        _write_half_then_interrupt(dest)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["dest.txt"]


def test_atomic_open_hides_the_new_bytes_until_the_end(tmp_path: Path) -> None:
    dest = tmp_path / "dest.txt"
    dest.write_bytes(b"old")
    with atomic_open(dest) as fh:
        fh.write(b"new")
        fh.flush()
        assert dest.read_bytes() == b"old"
    assert dest.read_bytes() == b"new"


def test_atomic_write_fsyncs_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, fs_events: list[tuple[str, str]]
) -> None:
    events = fs_events
    dest = tmp_path / "dest.txt"
    atomic_write(dest, b"durable")
    temp = events[0][1]
    assert events == [
        ("fsync", temp),
        ("replace", f"{temp} -> {dest}"),
        ("fsync", str(tmp_path)),
    ]
    assert Path(temp).parent == tmp_path


def test_atomic_write_honours_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "dest.txt", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "dest.txt").stat().st_mode & 0o777 == 0o640
