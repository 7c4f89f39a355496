"""The fixture production app: a tiny HTTP service (tests/production/app) run as a Compose
project of its own, in a production directory apart from its git workspace.

Every Compose project is named after the session's compose prefix, so the suite's
sweep (tests/conftest.py) removes whatever a crashed test left; each test takes
its own down with its volumes, images and release tags.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import docker

from tests.containers.helpers import BASE_IMAGE
from tests.containers.helpers import SESSION as CONTAINERS_SESSION
from tests.integration.compose import SESSION
from tests.polling import wait_until


class StatusRow(TypedDict):
    """One container in ``sidekick status --json`` (sidekick.production.status.ContainerRow)."""

    project: str
    container: str
    service: str
    state: str
    health: str
    uptime: str
    ports: str
    image: str
    built: str
    release: str
    restarts: int | None
    oom_killed: bool | None
    exit_code: int | None
    probe: str


class ProjectStatusJson(TypedDict):
    """One project in ``sidekick status --json`` (ProjectStatus.to_dict)."""

    project: str
    problem: str
    containers: list[StatusRow]


APP = Path(__file__).parent / "app"
APP_LABEL = "sidekick-tests.app"
SECRET = "hunter2-do-not-print-7f3a"
COMMAND_TIMEOUT = 180.0
_numbers = itertools.count(1)


@dataclass
class ProdApp:
    root: Path
    workspace: Path
    production: Path
    compose_project: str
    config: Path
    name: str = "Shop"

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["docker", "compose", "-p", self.compose_project]
        argv += ["-f", str(self.production / "compose.yaml"), *args]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            check=check,
            timeout=COMMAND_TIMEOUT,
            env=self.env(),
        )

    def env(self) -> dict[str, str]:
        """What the compose file reads: the base image and the labels of the images built."""
        labels = {"TEST_SESSION": CONTAINERS_SESSION, "TEST_APP": self.compose_project}
        return {**os.environ, "BASE_IMAGE": BASE_IMAGE, **labels}

    def sidekick(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "sidekick", "prod", *args, "--config", str(self.config)]
        return subprocess.run(
            argv,
            check=False,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            input=stdin,
            env=self.env(),
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """``sidekick prod ARGS`` in the background, for a test to kill midway."""
        argv = [sys.executable, "-m", "sidekick", "prod", *args, "--config", str(self.config)]
        return subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env()
        )

    def kill_when(self, marker: Path, *args: str) -> None:
        """``sidekick prod ARGS`` SIGKILLed once ``marker`` exists (its journal, say)."""
        victim = self.start(*args)
        try:
            wait_until(marker.exists, timeout=60, what=f"{args[0]} wrote {marker.name}")
        finally:
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)

    def web_image(self) -> str:
        """The id of the image the web container runs."""
        (container,) = self.compose("ps", "-q", "web").stdout.split()
        client = docker.from_env()
        try:
            return str(client.containers.get(container).attrs["Image"])
        finally:
            client.close()

    def status_json(self) -> list[ProjectStatusJson]:
        result = self.sidekick("status", self.name, "--json")
        return list(json.loads(result.stdout))

    def port(self) -> int:
        text = self.compose("port", "web", "8000").stdout.strip()
        return int(text.rsplit(":", 1)[1])

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port()}{path}", timeout=3) as r:
                return r.status, r.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def version(self) -> str:
        return self.get("/version")[1]

    def commit(self, message: str) -> None:
        git(self.workspace, "add", "-A")
        git(self.workspace, "commit", "-q", "-m", message)

    def take_down(self) -> None:
        self.compose("down", "-v", "--timeout", "1", "--rmi", "local", check=False)
        client = docker.from_env()
        try:
            label = f"{APP_LABEL}={self.compose_project}"
            for image in client.images.list(all=True, filters={"label": label}):
                if image.id is None:
                    continue
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(image.id, force=True)
        finally:
            client.close()


def git(directory: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(directory), *args],
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )
    return result.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_app(root: Path, extra_production: str = "") -> ProdApp:
    """A workspace (a git repository) and a production directory holding the same app."""
    workspace, production = root / "workspace", root / "production"
    shutil.copytree(APP, workspace)
    git(workspace, "init", "-q")
    (workspace / ".gitignore").write_text("*.pyc\n")
    shutil.copytree(workspace, production)
    # A secret that lives only in production and must never show in any output.
    (production / ".env").write_text(f"SECRET_TOKEN={SECRET}\n")
    # A fixed host port, so URL smoke checks reach the service after it is recreated.
    compose = (APP / "compose.yaml").read_text()
    compose = compose.replace("127.0.0.1::8000", f"127.0.0.1:{free_port()}:8000")
    (production / "compose.yaml").write_text(
        compose + "    environment:\n      SECRET_TOKEN: ${SECRET_TOKEN}\n"
    )
    shutil.copy(production / "compose.yaml", workspace / "compose.yaml")
    git(workspace, "add", "-A")
    git(workspace, "commit", "-q", "-m", "first")
    app = ProdApp(
        root, workspace, production, f"{SESSION}-prod{next(_numbers)}", root / "config.yaml"
    )
    app.config.write_text(
        f"daemon:\n  state_dir: {root / 'state'}\n"
        f"projects:\n  {app.name}:\n    directory: {workspace}\n    production:\n"
        f"      path: {production}\n      compose_project: {app.compose_project}\n"
        f"      primary: web\n      deploy:\n        wait_timeout: 30\n{extra_production}"
    )
    return app
