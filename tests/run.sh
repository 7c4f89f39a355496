#!/usr/bin/env bash
# Run the whole test suite, preparing this machine first where it lacks something:
# tmux, vim and sed (the editor-save tests), a virtualenv with the package and its
# test dependencies from the lock, the pinned Claude Code CLI, and a Docker engine with Compose
# and the local base image. Installing system packages and starting dockerd need
# root on Debian; without root, what is missing is reported and those tests skip
# (or fail, under CI=true). Arguments go to pytest.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Test servers live on loopback; a configured HTTP proxy must not be asked for them.
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY="$no_proxy"

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

missing_packages=()
for tool in tmux vim sed git; do
    command -v "$tool" >/dev/null 2>&1 || missing_packages+=("$tool")
done
if ((${#missing_packages[@]})); then
    echo "tests/run.sh: installing ${missing_packages[*]}"
    as_root apt-get update -qq && as_root apt-get install -y -qq "${missing_packages[@]}" \
        || echo "tests/run.sh: could not install ${missing_packages[*]}" >&2
fi

python="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv
fi
# The dependencies come from the lock alone (scripts/lock.sh refreshes it) and the
# package goes in without them. The stamp holds the lock's and pyproject's hash,
# so a .venv made from an older lock is brought to the new pins, not kept.
lock=requirements/test.txt
stamp=.venv/.sidekick-lock.sha256
wanted_stamp="$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted_stamp" ]]; then
    echo "tests/run.sh: installing the dependencies from $lock"
    .venv/bin/python -m pip install --quiet --require-hashes -r "$lock"
    .venv/bin/python -m pip install --quiet --no-deps -e .
    echo "$wanted_stamp" >"$stamp"
fi

bash .ci/install-claude-code.sh || echo "tests/run.sh: Claude Code CLI not installed" >&2
if [[ -f .ci/install-docker.sh ]]; then
    bash .ci/install-docker.sh || echo "tests/run.sh: no Docker engine" >&2
fi

# Restarting dockerd disturbs every container on the machine, so that test runs
# only when asked (CI asks), alone and last.
restart_test=tests/containers/test_dockerd_restart.py
status=0
.venv/bin/python -m pytest --ignore="$restart_test" "$@" || status=$?
if [[ "${SIDEKICK_TEST_RESTART_DOCKERD:-}" == 1 && $status -eq 0 ]]; then
    .venv/bin/python -m pytest "$restart_test" || status=$?
fi
exit "$status"
