"""Hostile path strings: every one must be refused by any API taking a relative path.

Import it in a test of your own path argument (pytest puts ``tests/`` on
``sys.path`` through ``tests/conftest.py``)::

    from traversal import TRAVERSAL_CORPUS

    @pytest.mark.parametrize("name", TRAVERSAL_CORPUS)
    def test_artifact_name_is_confined(name): ...

Plain data, no pytest: each entry is a path an attacker could send as an
artifact name, dataset file or model file, with the reason it is hostile.
"""

from __future__ import annotations

__all__ = ["TRAVERSAL_CORPUS", "TRAVERSAL_REASONS"]

#: entry -> why it must be refused
TRAVERSAL_REASONS: dict[str, str] = {
    # Empty and root-only: they name the root itself, not a file in it.
    "": "empty",
    ".": "the root itself",
    "./": "the root itself",
    "./.": "the root itself",
    "/": "absolute, the filesystem root",
    # Parent components.
    "..": "the root's parent",
    "../": "the root's parent",
    "../x": "a sibling of the root",
    "../../etc/passwd": "a system file",
    "a/../../b": "climbs out after one step in",
    "a/b/../../../c": "climbs out after two steps in",
    "a/..": "a '..' component, even if it would land inside",
    "./../x": "'.' then '..'",
    "a/./../../x": "mixed '.' and '..'",
    # Components some systems trim to '.' or '..' (Windows drops trailing dots and spaces).
    "...": "only dots",
    "a/.../b": "only dots",
    ".. ": "trimmed to '..' on Windows",
    "a/. /b": "trimmed to '.' on Windows",
    " ": "only a space",
    # Absolute paths.
    "/etc/passwd": "absolute",
    "//proc/self/root/etc/passwd": "absolute, with a doubled slash",
    "///etc/passwd": "absolute, with three slashes",
    "C:\\Windows": "a Windows drive",
    "C:/Windows/System32": "a Windows drive with forward slashes",
    "c:x": "a drive-relative Windows path",
    "\\\\server\\share\\x": "a Windows UNC path",
    # Backslash separators, treated as separators on Windows.
    "a\\..\\b": "backslash traversal",
    "..\\x": "backslash traversal",
    "a\\b": "a backslash",
    # Percent-encoded traversal, single and double, any case.
    "%2e%2e/x": "encoded '..'",
    "%2E%2E%2Fx": "encoded '../', upper case",
    "..%2fx": "encoded '/'",
    "..%2Fx": "encoded '/', upper case",
    "%2e%2e%5cx": "encoded '..\\'",
    "x%00y": "encoded NUL",
    "%252e%252e/x": "double-encoded '..'",
    "%252e%252e%252fx": "double-encoded '../'",
    "a/%2e%2e/%2e%2e/b": "encoded '..' inside the path",
    # Control characters.
    "x\x00y": "NUL byte",
    "\x00": "NUL byte alone",
    "a/b\x00.png": "NUL byte before an extension",
    "a\nb": "newline",
    "a\rb": "carriage return",
    "a\tb": "tab",
    "a\x1bb": "escape",
    "a\x7fb": "DEL",
    "a\x85b": "C1 next-line",
    "a\u2028b": "Unicode line separator",
    # Unicode look-alikes that NFKC normalisation turns into traversal.
    "\uff0e\uff0e/x": "fullwidth '..'",
    "a\uff0fb/\uff0e\uff0e": "fullwidth '/' and '..'",
    "\uff3cx": "fullwidth backslash",
    # Over-long names.
    "a" * 1025: "over 1024 characters",
    "a/" * 600 + "b": "over 1024 characters in many parts",
    "x" * 256: "a component over 255 bytes",
}

#: The hostile strings alone, for ``pytest.mark.parametrize``.
TRAVERSAL_CORPUS: list[str] = list(TRAVERSAL_REASONS)
