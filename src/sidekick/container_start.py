"""The production image's entrypoint: ``sidekick`` as the owner of the data directory.

A checkout on a host can belong to anyone: root (a common server setup), the
person (often UID 1000) or some other user. A UID baked into the image at build
time left the daemon unable to write the list whenever the two differed, so
the container starts as root, reads who owns the data directory (/data), makes
the daemon's own directories theirs, and drops to that user and group before
running ``sidekick``. Files written back stay the person's, and no setting or
rebuild is needed when the owner changes.

The checkout ships the example list as ``priorities.example.csv``, never the
list itself: at the first start the list is made from it (as the data
directory's owner), so the daemon's write-backs and the demo agent's files
leave the person's git checkout clean.

A data directory owned by root keeps the daemon (and its tmux agents) root.
Claude Code refuses ``--dangerously-skip-permissions`` and the
``bypassPermissions`` mode as root, so an agent profile asking for either stops
the start at once with one line naming the fix, instead of failing every run.

Run as ``python -m sidekick.container_start [sidekick arguments]``.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sidekick.config import AgentProfile, Config, load_config
from sidekick.errors import SidekickError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = "/data/config.yaml"
DOCKER_SOCKET = Path("/var/run/docker.sock")
# The directories the daemon writes that live in the image or a named volume.
OWN_DIRECTORIES = ("/state", "/run/sidekick-tmux", "/home/sidekick")
HOME = "/home/sidekick"
# Runners whose agents are processes of this container, running as the daemon does.
LOCAL_RUNNERS = frozenset({"tmux"})
ROOT_REFUSED_FLAGS = frozenset({"--dangerously-skip-permissions"})
ROOT_REFUSED_MODE = "bypassPermissions"
# The settings the image was built with and those compose now asks for.
BUILT_SETTINGS_ENV = "SIDEKICK_IMAGE_BUILT_WITH"
WANTED_SETTINGS_ENV = "SIDEKICK_COMPOSE_BUILD_SETTINGS"
EX_CONFIG = 78


@dataclass(frozen=True)
class Identity:
    """Who the daemon runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...]

    @property
    def is_root(self) -> bool:
        return self.uid == 0


@dataclass(eq=False)
class RootRefused(SidekickError):
    """The data directory is root's, and a profile asks Claude Code for what root may not."""

    data_dir: str
    profiles: tuple[str, ...]

    def message(self) -> str:
        names = ", ".join(self.profiles)
        return (
            f"{self.data_dir} belongs to root, so agents would run as root, and Claude Code "
            f"refuses --dangerously-skip-permissions/bypassPermissions as root (profile {names}): "
            f"give the data directory to a user on the host (sudo chown -R 1000:1000 <data dir>) "
            f"or use --permission-mode acceptEdits"
        )


def identity_for(data_dir: Path, docker_socket: Path = DOCKER_SOCKET) -> Identity:
    """The owner of the data directory, with the Docker socket's group when there is one."""
    owner = data_dir.stat()
    groups = (docker_socket.stat().st_gid,) if docker_socket.exists() else ()
    return Identity(owner.st_uid, owner.st_gid, groups)


def refused_as_root(agents: Mapping[str, AgentProfile]) -> tuple[str, ...]:
    """Profiles whose agents run here and ask Claude Code for what it refuses as root."""
    return tuple(
        name
        for name, profile in agents.items()
        if profile.runner in LOCAL_RUNNERS and _bypasses_permissions(profile.command)
    )


def _bypasses_permissions(command: Sequence[str]) -> bool:
    for index, word in enumerate(command):
        if word in ROOT_REFUSED_FLAGS or word == f"--permission-mode={ROOT_REFUSED_MODE}":
            return True
        following = command[index + 1] if index + 1 < len(command) else ""
        if word == "--permission-mode" and following == ROOT_REFUSED_MODE:
            return True
    return False


def rebuild_hint(environ: Mapping[str, str]) -> str | None:
    """One line when the image was built with other settings than compose now gives."""
    built = environ.get(BUILT_SETTINGS_ENV)
    wanted = environ.get(WANTED_SETTINGS_ENV)
    if not built or not wanted or built == wanted:
        return None
    return (
        f"this image was built with {built} but the settings now say {wanted}; they take "
        f"effect only in a new image: docker compose up -d --build orchestrator"
    )


def unwritable_projects(config: Config | None) -> Path | None:
    """The projects root when the current user cannot write in it."""
    root = config.projects_root if config else None
    if root is None or not root.is_dir() or os.access(root, os.W_OK):
        return None
    return root


def become(identity: Identity, directories: Iterable[str] = OWN_DIRECTORIES) -> None:
    """Make the daemon's directories the identity's, then switch this process to it."""
    _ensure_account(identity)
    for directory in directories:
        _take(Path(directory), identity)
    os.setgroups(list(identity.groups))
    os.setgid(identity.gid)
    os.setuid(identity.uid)


def _ensure_account(identity: Identity) -> None:
    """tmux, git and ssh look the user up; a UID new to the image gets an entry."""
    try:
        grp.getgrgid(identity.gid)
    except KeyError:
        subprocess.run(
            ["groupadd", "--gid", str(identity.gid), f"sidekick{identity.gid}"], check=True
        )
    try:
        pwd.getpwuid(identity.uid)
    except KeyError:
        account = ["--uid", str(identity.uid), "--gid", str(identity.gid), "--home-dir", HOME]
        shell = ["--no-create-home", "--shell", "/bin/bash"]
        subprocess.run(["useradd", *account, *shell, f"sidekick{identity.uid}"], check=True)


def _take(directory: Path, identity: Identity) -> None:
    """Own a directory and, when it belonged to someone else before, what is in it."""
    if not directory.exists():
        return
    stat = directory.stat()
    if (stat.st_uid, stat.st_gid) == (identity.uid, identity.gid):
        return
    logger.info("giving %s to %d:%d", directory, identity.uid, identity.gid)
    for path in (directory, *directory.rglob("*")):
        os.lchown(path, identity.uid, identity.gid)


def identity_to_take(data_dir: Path, config: Config | None) -> Identity | None:
    """The identity to drop to (None: stay as started). Raises RootRefused."""
    if os.geteuid() != 0 or not data_dir.is_dir():
        return None
    identity = identity_for(data_dir)
    if identity.is_root and config is not None:
        refused = refused_as_root(config.agents)
        if refused:
            raise RootRefused(str(data_dir), refused)
    return identity


def _config_or_none(path: Path) -> Config | None:
    """The config when it loads; a broken one is left for the daemon to report."""
    try:
        return load_config(path)
    except (SidekickError, OSError):
        return None


def start_list_from_example(config: Config | None, data_dir: Path) -> Path | None:
    """Make the CSV list from the example beside it when there is no list yet.

    The list is the config's ``priority_source.csv.path`` (``data_dir/priorities.csv``
    without a config); the example is the same name with ``.example`` before the
    suffix. Returns the list made, or None (a list exists, no example, a sheet).
    """
    if config is not None and config.priority_source.type == "sheets":
        return None
    path = config.priority_source.csv.path if config is not None else Path("priorities.csv")
    path = data_dir / path
    example = path.with_name(f"{path.stem}.example{path.suffix}")
    if not example.is_file():
        return None
    try:
        with path.open("xb") as handle:
            handle.write(example.read_bytes())
    except FileExistsError:
        return None
    logger.info("made %s from %s, the example list", path, example.name)
    return path


def warn_unwritable_projects(config: Config | None) -> None:
    root = unwritable_projects(config)
    if root is not None:
        uid, gid = os.getuid(), os.getgid()
        logger.warning(
            "agents run as UID %d and cannot write in %s (SIDEKICK_PROJECTS_DIR): give it to "
            "that user on the host (sudo chown -R %d:%d <projects dir>)",
            *(uid, root, uid, gid),
        )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="sidekick: %(message)s", stream=sys.stderr)
    arguments = list(sys.argv[1:] if argv is None else argv)
    hint = rebuild_hint(os.environ)
    if hint:
        logger.warning("%s", hint)
    config_file = Path(os.environ.get("SIDEKICK_CONFIG", DEFAULT_CONFIG))
    config = _config_or_none(config_file)
    try:
        identity = identity_to_take(config_file.parent, config)
    except RootRefused as exc:
        logger.error("%s", exc)
        return EX_CONFIG
    if identity is not None and not identity.is_root:
        become(identity)
        os.environ["HOME"] = HOME
    start_list_from_example(config, config_file.parent)
    warn_unwritable_projects(config)
    program = shutil.which("sidekick") or "sidekick"
    os.execv(program, [program, *arguments])
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
