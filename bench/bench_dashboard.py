"""The dashboard under load: page time with 1,000 projects, save-to-browser latency, 50 viewers.

Real parts: a 1,000-row priorities.csv, the daemon (in this process, so its
reconciles can be timed), ``sidekick web`` as its own process, and viewers as
plain HTTP clients of its server-sent events in a third process.

1. Projects page: 50 GETs of ``/``; the server's own time comes from its
   ``Server-Timing`` header (the client's round trip is printed beside it).
2. Save to browser: the list is saved by rename with one row changed, 30 times,
   while the daemon runs; the time until an events client receives a table with
   the change.
3. Viewers: the daemon's reconcile (``run_once``: reconcile, status report,
   heartbeat; every one of them changes the report, so every viewer gets a new
   table each time) in alternating rounds with 0 and with 50 viewers connected.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
from yarl import URL

from _common import HEADER, kill_tmux, median_p95, save_by_rename, scratch, write_config
from sidekick.config import load_config
from sidekick.daemon import Daemon
from sidekick.web.app import page_templates
from sidekick.web.data import Board

PROJECTS = 1_000
PAGE_GETS = 50
SAVES = 30
VIEWERS = 50
ROUNDS = 6
TICKS_PER_ROUND = 10
USER, TOKEN = "bench", "a-token-for-the-dashboard-bench"
STATUSES = ("Complete", "Blocked", "Failed")


def rows(marker: str = "") -> str:
    lines = [
        f"project-{i:04d},{i % 97},{STATUSES[i % 3]},,{marker if i == 500 else ''},"
        f'"Next step for project {i}",,no,\n'
        for i in range(PROJECTS)
    ]
    return HEADER + "".join(lines)


def world() -> tuple[Path, int]:
    root = scratch("dashboard")
    port = free_port()
    (root / "dashboard.secret").write_text(f"{USER}:{TOKEN}\n")
    names = [f"project-{i:04d}" for i in range(PROJECTS)]
    write_config(
        root,
        names,
        ["sleep", "600"],
        web={"secret_file": str(root / "dashboard.secret"), "port": port},
        daemon={"state_dir": "state", "reconcile_interval": 30, "debounce": 0.05},
    )
    save_by_rename(root / "priorities.csv", rows())
    return root, port


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def logged_in(url: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    for _ in range(100):
        try:
            async with session.get(url + "/login") as page:
                token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
                break
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    assert token is not None, "no login form"
    form = {"csrf": token.group(1), "user": USER, "secret": TOKEN}
    async with session.post(url + "/login", data=form, allow_redirects=False) as answer:
        assert answer.status == 303, answer.status
    return session


def uncached_page_times(config_path: Path) -> list[float]:
    """The page rendered from the records alone, as when no live update has run yet."""
    board = Board(load_config(config_path, environ={}))
    template = page_templates().get_template("projects.html")
    times = []
    for _ in range(PAGE_GETS // 5):
        started = time.perf_counter()
        data = board.projects()
        template.render(
            title="Projects",
            page="projects",
            user=USER,
            csrf="",
            read_only=False,
            asset_version="",
            data=data,
            cached=None,
        )
        times.append((time.perf_counter() - started) * 1000)
    board.close()
    return times


async def page_times(session: aiohttp.ClientSession, url: str) -> tuple[list[float], list[float]]:
    server, client = [], []
    for _ in range(PAGE_GETS):
        started = time.perf_counter()
        async with session.get(url + "/") as page:
            body = await page.text()
            timing = page.headers["Server-Timing"]
        client.append((time.perf_counter() - started) * 1000)
        server.append(float(timing.split("dur=")[1]))
        assert body.count("<tr data-project=") == PROJECTS
    return server, client


async def save_latencies(session: aiohttp.ClientSession, url: str, csv: Path) -> list[float]:
    latencies = []
    async with session.get(url + "/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:
        await stream.content.readline()  # ": connected"
        for n in range(SAVES):
            marker = f"bench-save-{n}"
            saved = time.perf_counter()
            save_by_rename(csv, rows(marker))
            while True:
                line = await asyncio.wait_for(stream.content.readline(), 10)
                if marker.encode() in line:
                    latencies.append((time.perf_counter() - saved) * 1000)
                    break
            await asyncio.sleep(0.2)
    return latencies


def viewers_process(url: str, cookie: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, __file__, "--viewers", url, cookie]
    return subprocess.Popen(argv, stdout=subprocess.PIPE)


async def view(url: str, cookie: str) -> None:
    """Hold VIEWERS event streams open and read every table sent, until killed."""
    jar = aiohttp.CookieJar(unsafe=True)
    jar.update_cookies({"sidekick_session": cookie}, URL(url))
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        streams = [await session.get(url + "/events") for _ in range(VIEWERS)]
        for stream in streams:
            await stream.content.readline()
        print("ready", flush=True)
        await asyncio.gather(*(_drain(s) for s in streams))


async def _drain(stream: aiohttp.ClientResponse) -> None:
    while await stream.content.readany():
        pass


def reconcile_times(daemon: Daemon, ticks: int) -> list[float]:
    times = []
    for _ in range(ticks):
        started = time.perf_counter()
        daemon.run_once()
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.15)  # the dashboard polls every 0.1 s: let it see each report
    return times


async def main_async() -> None:
    root, port = world()
    url = f"http://127.0.0.1:{port}"
    config = load_config(root / "config.yaml", environ={})
    daemon = Daemon(config)
    daemon.run_once()
    argv = ["web", "--config", str(root / "config.yaml"), "--log-level", "WARNING"]
    web = subprocess.Popen([sys.executable, "-m", "sidekick", *argv])
    try:
        session = await logged_in(url)
        server, client = await page_times(session, url)
        uncached = uncached_page_times(root / "config.yaml")
        cookie = next(c.value for c in session.cookie_jar if c.key == "sidekick_session")
        quiet, crowded = await asyncio.to_thread(_viewer_rounds, daemon, url, cookie)
        runner = threading.Thread(target=daemon.run, daemon=True)
        runner.start()
        latencies = await save_latencies(session, url, root / "priorities.csv")
        daemon.request_stop()
        runner.join(30)
        await session.close()
    finally:
        web.terminate()
        web.wait(15)
        kill_tmux(root / "tmux.sock")
    print(
        f"projects page rendered without the live rows: median {statistics.median(uncached):.1f} ms"
    )
    report(server, client, latencies, quiet, crowded)


def _viewer_rounds(daemon: Daemon, url: str, cookie: str) -> tuple[list[float], list[float]]:
    quiet: list[float] = []
    crowded: list[float] = []
    reconcile_times(daemon, 3)  # warm
    for _ in range(ROUNDS):
        quiet += reconcile_times(daemon, TICKS_PER_ROUND)
        viewers = viewers_process(url, cookie)
        assert viewers.stdout is not None and viewers.stdout.readline().strip() == b"ready"
        crowded += reconcile_times(daemon, TICKS_PER_ROUND)
        viewers.terminate()
        viewers.wait(10)
    return quiet, crowded


def report(
    server: list[float],
    client: list[float],
    latencies: list[float],
    quiet: list[float],
    crowded: list[float],
) -> None:
    server_median, _ = median_p95(server)
    client_median, _ = median_p95(client)
    save_median, save_p95 = median_p95(latencies)
    quiet_median, crowded_median = statistics.median(quiet), statistics.median(crowded)
    rise = (crowded_median / quiet_median - 1) * 100
    print(f"projects page, {PROJECTS} projects: client round trip median {client_median:.1f} ms")
    print(f"save to browser, {SAVES} saves: median {save_median:.0f} ms")
    print(
        f"reconcile (run_once, {PROJECTS} projects): median {quiet_median:.1f} ms with no viewer,"
        f" {crowded_median:.1f} ms with {VIEWERS} ({ROUNDS} alternating rounds)"
    )
    print(
        f"dashboard: projects page server time median {server_median:.1f} ms ({PROJECTS} projects;"
        f" target < 150); save-to-browser p95 {save_p95:.0f} ms (target < 1000); reconcile with"
        f" {VIEWERS} viewers {rise:+.1f} % (target < +10 %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", nargs=2, metavar=("URL", "COOKIE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.viewers:
        asyncio.run(view(*args.viewers))
        return
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
