# shellcheck shell=bash
# Sourced by scripts/example and scripts/test: make the project's venv ready.
#
#   ensure_venv EXTRA   cd to the repo root, create .venv if it is missing or
#                       broken, and `pip install -e '.[EXTRA]'` unless that was
#                       done already for this exact pyproject.toml.
#
# Afterwards $ROOT is the repo root and $PY the venv's python.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"

ensure_venv() {
    local extra="$1"
    cd "$ROOT" || exit 1
    if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
        if ! python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
            echo "error: Shipyard needs Python >= 3.11; python3 is $(python3 --version 2>&1)" >&2
            exit 1
        fi
        echo "==> creating .venv ($(python3 --version))"
        python3 -m venv --clear .venv
        "$PY" -m pip install --quiet --upgrade pip
    fi
    # The install depends on pyproject.toml alone (the source is installed editable).
    local stamp=".venv/.shipyard-installed-$extra" want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        echo "==> installing shipyard with extras [$extra]"
        "$PY" -m pip install --quiet --disable-pip-version-check -e ".[$extra]"
        echo "$want" >"$stamp"
    fi
}
