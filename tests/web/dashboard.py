"""A real daemon and a real ``sidekick web`` over a small world, for the dashboard's tests."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.daemon.world import World, make_world
from tests.polling import wait_until
from tests.sidekick_process import sidekick_process

USER = "alice"
TOKEN = "a-long-dashboard-token-for-tests"
# An agent that keeps talking: a tick every 0.1 s with markup and text in several scripts,
# which the page must show as text.
TALKER = [
    "sh",
    "-c",
    'i=0; while :; do echo "tick $i <b>bold</b> Привет 日本語 🙂"; i=$((i+1)); sleep 0.1; done',
]
ARTIFACTS = Path(os.environ.get("SIDEKICK_TEST_ARTIFACTS", "test-artifacts")) / "web"


@dataclass
class Dashboard:
    world: World
    url: str
    secret_file: Path

    def get(self, path: str) -> tuple[int, str]:
        """A GET without any login: the status and the body."""
        request = urllib.request.Request(self.url + path, headers={"Accept": "text/html"})
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except urllib.error.URLError:
            return 0, ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_dashboard(
    root: Path,
    worlds: list[World],
    rows: list[str],
    *,
    read_only: bool = False,
    more_credentials: str = "",
    **settings: object,
) -> Iterator[Dashboard]:
    """The world's daemon (``sidekick run``) and dashboard (``sidekick web``) as processes."""
    secret = root / "dashboard.secret"
    secret.write_text(f"# who may look\n{USER}:{TOKEN}\n{more_credentials}")
    port = free_port()
    names = [row.split(",")[0] for row in rows]
    web = {"secret_file": str(secret), "port": port, "read_only": read_only}
    world = make_world(root, names, TALKER, rows=rows, web=web, **settings)
    worlds.append(world)
    config = str(world.config_path)
    with ExitStack() as stack:
        stack.enter_context(sidekick_process("run", "--config", config, log=root / "daemon.log"))
        stack.enter_context(sidekick_process("web", "--config", config, log=root / "web.log"))
        dashboard = Dashboard(world, f"http://127.0.0.1:{port}", secret)
        wait_until(lambda: dashboard.get("/login")[0] == 200, what="the dashboard answers")
        wait_until((world.state / "status.json").exists, what="a first reconcile")
        yield dashboard
