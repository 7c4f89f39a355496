"""What a swarm task runs around the agent: its secrets into place, and with
``workspace: git`` a clone of the project's repository on a branch of its own.

The agent's code may be on another machine, so with ``workspace: git`` the
task clones the remote into a volume, works on ``sidekick/<slug>/<run id>``,
commits what the agent left and pushes that branch back; its last log line
names the branch and commit, which the runner keeps beside the run's log.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sidekick.models import slugify

SECRETS = "/run/secrets"
API_KEY_FILE = "anthropic_api_key"
STDIN_FILE = "sidekick_stdin"
CLAUDE_STATE_FILE = "claude_state"
CLAUDE_SETTINGS_FILE = "claude_settings"
GIT_REMOTE_FILE = "sidekick_git_remote"
WORKSPACE = PurePosixPath("/workspace")
BRANCH_MARK = "sidekick-branch: "
CLONE_FAILED = 70
PUSH_FAILED = 71

# Secrets become files; the key is read into the agent's environment only inside the
# task (never in the service spec), and Claude Code's files are copied into a writable
# config directory it may add its sessions to.
_PREPARE = (
    f"if [ -r {SECRETS}/{API_KEY_FILE} ]; then "
    f'ANTHROPIC_API_KEY="$(cat {SECRETS}/{API_KEY_FILE})"; export ANTHROPIC_API_KEY; fi; '
    'if [ -n "$CLAUDE_CONFIG_DIR" ]; then mkdir -p "$CLAUDE_CONFIG_DIR"; '
    f"if [ -r {SECRETS}/{CLAUDE_STATE_FILE} ]; then "
    f'cp {SECRETS}/{CLAUDE_STATE_FILE} "$CLAUDE_CONFIG_DIR/.claude.json"; fi; '
    f"if [ -r {SECRETS}/{CLAUDE_SETTINGS_FILE} ]; then "
    f'cp {SECRETS}/{CLAUDE_SETTINGS_FILE} "$CLAUDE_CONFIG_DIR/settings.json"; fi; fi; '
    f"input=/dev/null; if [ -r {SECRETS}/{STDIN_FILE} ]; then "
    f"input={SECRETS}/{STDIN_FILE}; fi; "
)

PLAIN_WRAPPER = _PREPARE + 'exec "$@" < "$input" 2>&1'

# The remote may carry a token: it is a secret file too, never in the environment.
GIT_WRAPPER = (
    _PREPARE + f'remote="$(cat {SECRETS}/{GIT_REMOTE_FILE})"; '
    'git clone --quiet "$remote" "$SIDEKICK_WORKSPACE" 2>&1 '
    f'|| {{ echo "sidekick: cannot clone the project repository"; exit {CLONE_FAILED}; }}; '
    'cd "$SIDEKICK_WORKSPACE" && git checkout --quiet -b "$SIDEKICK_BRANCH" 2>&1 '
    f"|| exit {CLONE_FAILED}; "
    '"$@" < "$input" 2>&1; code=$?; '
    "git add -A 2>&1; "
    "git -c user.name=sidekick -c user.email=sidekick@localhost commit --quiet --allow-empty "
    '-m "sidekick: $SIDEKICK_PROJECT run $SIDEKICK_RUN_ID (exit $code)" 2>&1; '
    'if git push --quiet origin "HEAD:refs/heads/$SIDEKICK_BRANCH" 2>&1; then '
    f'echo "{BRANCH_MARK}$SIDEKICK_BRANCH $(git rev-parse HEAD)"; '
    'else echo "sidekick: cannot push $SIDEKICK_BRANCH"; '
    f"if [ $code -eq 0 ]; then code={PUSH_FAILED}; fi; fi; "
    "exit $code"
)

# Any uid may own a clone or a bare remote on a shared filesystem: trust them all.
GIT_ENV = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}


@dataclass(frozen=True)
class PushedBranch:
    branch: str
    commit: str


def branch_name(project: str, run_id: str) -> str:
    return f"sidekick/{slugify(project)}/{run_id}"


def origin_url(directory: Path) -> str | None:
    """The project's own ``origin``, when its directory here is a clone that has one."""
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = done.stdout.strip()
    return url if done.returncode == 0 and url else None


def local_remote(url: str) -> Path | None:
    """The directory of a remote on a file system (a path or file:// URL); None otherwise."""
    path = url.removeprefix("file://")
    return Path(path) if path.startswith("/") else None


def pushed_branch(log: bytes) -> PushedBranch | None:
    """The branch and commit the task's last marker line names, if it pushed one."""
    found = None
    for line in log.decode("utf-8", "replace").splitlines():
        if line.startswith(BRANCH_MARK):
            found = line.removeprefix(BRANCH_MARK)
    match = re.fullmatch(r"(\S+) ([0-9a-f]{7,64})", found.strip()) if found else None
    return PushedBranch(match.group(1), match.group(2)) if match else None


def branch_path(log_path: Path) -> Path:
    """Where the pushed branch and its commit are kept, beside the run's log."""
    return log_path.with_name(log_path.name + ".branch")


def read_pushed_branch(log_path: Path) -> PushedBranch | None:
    try:
        branch, commit = branch_path(log_path).read_text(encoding="utf-8").split()
    except (OSError, ValueError):
        return None
    return PushedBranch(branch, commit)
