#!/usr/bin/env bash
# Refreshes the committed lock of the whole dependency tree from pyproject.toml:
#   requirements/runtime.txt   what the package needs to run (the images' venvs)
#   requirements/test.txt      the same plus the test extra (tests/run.sh, CI, test and dev images)
# Every file pins each package to one version with the hashes of all its files,
# for every platform and Python >= 3.11 (--universal), so an install from it is
# the same on any machine. Existing pins are kept; arguments go to
# `uv pip compile`, e.g. `scripts/lock.sh --upgrade` or `--upgrade-package aiohttp`.
#
# uv runs from a throwaway virtualenv at a pinned version, so nothing is
# installed on the machine or into the project's .venv.
set -euo pipefail

uv_version="0.13.9"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

tool_dir="$(mktemp -d)"
trap 'rm -rf "$tool_dir"' EXIT
python3 -m venv "$tool_dir/venv"
"$tool_dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"

compile() {
    local output="$1"
    shift
    "$tool_dir/venv/bin/uv" pip compile pyproject.toml \
        --universal --python-version 3.11 --generate-hashes \
        --custom-compile-command "scripts/lock.sh" \
        --quiet --output-file "$output" "$@"
}

compile requirements/runtime.txt "$@"
compile requirements/test.txt --extra test "$@"
echo "lock: wrote requirements/runtime.txt and requirements/test.txt"
