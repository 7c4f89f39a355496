"""Production operations against the local Docker engine, each figure a ratio measured here.

1. ``sidekick prod status`` against ``docker compose ps`` on a 10-container
   project (median of several rounds, the two in turn; target <= 1.5x).
2. ``sidekick prod logs --tail 10000`` of a million-line log against
   ``docker logs --tail 10000`` (target <= 1.5x).
3. A deploy of a one-file change (``sidekick prod deploy --yes``) against
   ``docker compose up -d --build --wait`` of the same change alone (median of three
   of each, in turn; target <= 1.3x).
4. From a failed health check to the previous release healthy again, on the
   fixture app of tests/production (target < 15 s).

Two more figures explain the first two: ``prod status`` served the configuration kept
by sidekick.config_cache against the same command loading it in full, and the least a
Python client of the engine costs for the logs: the interpreter importing the standard
modules a served ``prod logs`` imports, plus the engine's own time to send the 10,000 lines
(read here over its socket), against ``docker logs``.

Everything runs under Compose projects named ``skbench<id>-*`` and is taken down
(with the images it built) at the end. The figures are on the last line.

    .venv/bin/python bench/bench_prod.py
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import scratch
from sidekick.config import load_config
from sidekick.config_cache import RACY_NS
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.settings import ContainersConfig
from sidekick.production.audit import Action
from sidekick.production.deploy import Deployer, Outcome
from sidekick.production.store import ProductionStore
from sidekick.production.target import target

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "tests" / "production" / "app"
IMAGE = os.environ.get("SIDEKICK_BASE_IMAGE", "sidekick-base:bookworm")
# The command a person runs: the installed script (``python -m`` loads runpy first).
_SCRIPT = Path(sys.executable).with_name("sidekick")
SIDEKICK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sidekick"]
# The two looks take tens of milliseconds and the machine is shared: a median of fifteen
# rounds of each, in turn, moves less from one run of the bench to the next than seven.
ROUNDS = 15
DEPLOYS = 3
LINES = 1_000_000
TIMEOUT = 600
NOISY = (
    "import sys, time\n"
    f"for i in range({LINES}):\n"
    "    sys.stdout.write(f'line {i} of the bench log\\n')\n"
    "sys.stdout.flush(); print('done', flush=True); time.sleep(3600)\n"
)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        argv, capture_output=True, text=True, check=False, timeout=TIMEOUT, **kwargs
    )
    if done.returncode != 0:
        raise SystemExit(f"{argv} exited {done.returncode}: {done.stderr}")
    return done


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def paired(
    ours: Callable[[], object], theirs: Callable[[], object], rounds: int = ROUNDS
) -> tuple[float, float]:
    """Median times of both, their rounds taken in turn: a machine shared with other work
    gets busier and quieter, and the ratio is meant to compare the two, not two moments."""
    ours(), theirs()  # warm: page cache, engine caches, byte-compiled modules
    times = [(timed(ours), timed(theirs)) for _ in range(rounds)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


class Bench:
    def __init__(self, root: Path, prefix: str) -> None:
        self.root = root
        self.prefix = prefix
        self.config = root / "config.yaml"
        self.projects: list[tuple[str, Path]] = []

    def compose_file(self, name: str, text: str) -> Path:
        directory = self.root / name
        directory.mkdir(exist_ok=True)
        (directory / "compose.yaml").write_text(text)
        self.projects.append((f"{self.prefix}-{name}", directory))
        return directory

    def compose(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        directory = self.root / name
        argv = ["docker", "compose", "-p", f"{self.prefix}-{name}"]
        return run([*argv, "-f", str(directory / "compose.yaml"), *args], cwd=directory)

    def sidekick(self, *args: str, kept: bool = True) -> subprocess.CompletedProcess[str]:
        """``sidekick prod ARGS``; with ``kept=False`` its configuration is loaded in full
        (the cache directory named is a file, so nothing is kept)."""
        argv = [*SIDEKICK, "prod", *args, "--config", str(self.config)]
        env = self.installed()
        if not kept:
            env["XDG_CACHE_HOME"] = str(self.root / "config.yaml")
        return run(argv, env=env)

    def installed(self) -> dict[str, str]:
        """sidekick runs as an installed package does, from byte-compiled modules: with
        PYTHONDONTWRITEBYTECODE (set in CI shells) every run would compile its modules again,
        about a fifth of a ``prod status``. The warm-up round of ``paired`` writes them."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # The looks keep their view of the configuration there (sidekick.config_cache), as a
        # person's do in ~/.cache; the bench's goes with its scratch directory.
        cache = str(self.root / "cache")
        return {**env, "PYTHONPYCACHEPREFIX": str(self.root / "pycache"), "XDG_CACHE_HOME": cache}

    def write_config(self, entries: dict[str, tuple[Path, Path, str]]) -> None:
        lines = [f"daemon:\n  state_dir: {self.root / 'state'}\nprojects:"]
        for name, (workspace, production, extra) in entries.items():
            lines.append(
                f"  {name}:\n    directory: {workspace}\n    production:\n"
                f"      path: {production}\n"
                f"      compose_project: {self.prefix}-{production.name}\n"
                f"{extra}"
            )
        self.config.write_text("\n".join(lines) + "\n")

    def take_down(self) -> None:
        for project, directory in self.projects:
            subprocess.run(
                [
                    "docker",
                    "compose",
                    "-p",
                    project,
                    "-f",
                    str(directory / "compose.yaml"),
                    "down",
                    "-v",
                    "-t",
                    "1",
                    "--rmi",
                    "local",
                ],
                capture_output=True,
                check=False,
                timeout=TIMEOUT,
            )
        images = run(
            ["docker", "images", "-q", "--filter", f"label=sidekick-tests.app={self.prefix}"]
        )
        for image in set(images.stdout.split()):
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def fleet(bench: Bench) -> Path:
    service = "  s{n}:\n    image: " + IMAGE + "\n    init: true\n    command: [sleep, infinity]\n"
    return bench.compose_file(
        "ten", "services:\n" + "".join(service.format(n=n) for n in range(10))
    )


def noisy(bench: Bench) -> Path:
    directory = bench.compose_file(
        "noisy",
        f"services:\n  noisy:\n    image: {IMAGE}\n    init: true\n"
        "    volumes: ['./:/code:ro']\n    command: [python3, /code/noisy.py]\n",
    )
    (directory / "noisy.py").write_text(NOISY)
    return directory


def fixture_app(bench: Bench, name: str) -> tuple[Path, Path]:
    workspace = bench.root / f"{name}-workspace"
    shutil.copytree(APP, workspace)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    compose = (
        (APP / "compose.yaml").read_text().replace("127.0.0.1::8000", f"127.0.0.1:{port}:8000")
    )
    (workspace / "compose.yaml").write_text(compose)
    production = bench.root / name
    shutil.copytree(workspace, production)
    bench.projects.append((f"{bench.prefix}-{name}", production))
    return workspace, production


def wait_for_log(bench: Bench, container: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        tail = subprocess.run(
            ["docker", "logs", "--tail", "1", container],
            capture_output=True,
            text=True,
            check=False,
        )
        if "done" in tail.stdout:
            return
        time.sleep(1)
    raise SystemExit("the noisy container never finished its log")


class TimedUndo(Deployer):
    """A deployer that times its automatic rollback: failed health check to healthy again."""

    undo_seconds = 0.0

    def _undo_failed(self, *args: Any, **kwargs: Any) -> Outcome:
        # Whatever it is given is passed on: the timing must not pin the deployer's signature.
        started = time.perf_counter()
        outcome = super()._undo_failed(*args, **kwargs)
        TimedUndo.undo_seconds = time.perf_counter() - started
        return outcome


def rollback_seconds(bench: Bench, workspace: Path, production: Path) -> float:
    (workspace / "health.txt").write_text("broken\n")
    config = load_config(bench.config, environ={})
    chosen = target(config, "App")
    engine = ContainerEngine(config.containers)
    try:
        db = config.daemon.state_dir / "sidekick.db"
        with ProductionStore(db) as store, open(os.devnull, "w") as quiet:
            deployer = TimedUndo(chosen, engine, store, config.daemon.state_dir, progress=quiet)
            outcome = deployer.deploy(deployer.plan(), Action(store, "App", "bench"))
    finally:
        engine.close()
    if outcome.code == 0:
        raise SystemExit("the broken release went live: the health gate did not hold")
    return TimedUndo.undo_seconds


def one_file_deploys(bench: Bench, workspace: Path, plain: Path) -> tuple[float, float]:
    """Median times of a deploy of a one-file change and of Compose's own ``up`` of the same
    change, taken in turn: one of each varies by a second with the machine's load."""
    times = []
    for version in range(2, 2 + DEPLOYS):
        (workspace / "VERSION").write_text(f"{version}\n")
        deploy = timed(lambda: bench.sidekick("deploy", "App", "--yes"))
        (plain / "VERSION").write_text(f"{version}\n")
        times.append(
            (deploy, timed(lambda: bench.compose("plain", "up", "-d", "--build", "--wait")))
        )
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


# The standard modules a served ``prod logs`` imports, whatever sidekick's own code does.
STDLIB = "import argparse, datetime, json, logging, pathlib, pickle, socket, typing"


def python_floor(bench: Bench, container: str) -> float:
    """The interpreter importing STDLIB, plus the engine's own answer to the log request."""
    started = time.perf_counter()
    run([sys.executable, "-c", STDLIB], env=bench.installed())
    # A fresh engine per round: it asks the engine's API version first, as a new process does.
    engine = ContainerEngine(ContainersConfig())
    try:
        path, params = f"/containers/{container}/logs", {"stdout": 1, "stderr": 1, "tail": 10000}
        body = engine.get_stream("logs", "", path, params)
        try:
            while body.read(1 << 16):
                pass
        finally:
            body.close()
    finally:
        engine.close()
    return time.perf_counter() - started


def main() -> None:
    prefix = f"skbench{uuid.uuid4().hex[:6]}"
    os.environ.update({"BASE_IMAGE": IMAGE, "TEST_SESSION": prefix, "TEST_APP": prefix})
    bench = Bench(scratch("prod"), prefix)
    (bench.root / "workspace").mkdir()
    try:
        ten, logs = fleet(bench), noisy(bench)
        app_ws, app_prod = fixture_app(bench, "app")
        _, plain_prod = fixture_app(bench, "plain")
        gate = "      deploy:\n        wait_timeout: 5\n        require_clean: false\n"
        bench.write_config(
            {
                "Ten": (bench.root / "workspace", ten, ""),
                "Noise": (bench.root / "workspace", logs, ""),
                "App": (app_ws, app_prod, gate),
            }
        )
        for name in ("ten", "noisy", "app", "plain"):
            bench.compose(name, "up", "-d", "--build", "--wait")
        # The first look makes the state directory (and the byte-compiled modules); the
        # configuration is kept once the directories it names have been still for 2 s.
        bench.sidekick("status", "Ten")
        time.sleep(RACY_NS / 1e9 + 0.5)
        status, compose_ps = paired(
            lambda: bench.sidekick("status", "Ten"), lambda: bench.compose("ten", "ps")
        )
        kept, full = paired(
            lambda: bench.sidekick("status", "Ten"),
            lambda: bench.sidekick("status", "Ten", kept=False),
        )
        noisy_container = f"{prefix}-noisy-noisy-1"
        wait_for_log(bench, noisy_container)
        docker_logs = ["docker", "logs", "--tail", "10000", noisy_container]
        ours, theirs = paired(
            lambda: bench.sidekick("logs", "Noise", "--tail", "10000"), lambda: run(docker_logs)
        )
        floor, theirs_again = paired(
            lambda: python_floor(bench, noisy_container), lambda: run(docker_logs)
        )
        deploy, up = one_file_deploys(bench, app_ws, plain_prod)
        undo = rollback_seconds(bench, app_ws, app_prod)
    finally:
        bench.take_down()
        shutil.rmtree(bench.root, ignore_errors=True)
    figures = [
        f"prod status {status * 1000:.0f} ms vs compose ps {compose_ps * 1000:.0f} ms: "
        f"{status / compose_ps:.2f}x (target <= 1.5x)",
        f"logs --tail 10000 of {LINES} lines {ours * 1000:.0f} ms vs docker logs "
        f"{theirs * 1000:.0f} ms: {ours / theirs:.2f}x (target <= 1.5x)",
        f"one-file deploy {deploy:.1f} s vs up --build --wait {up:.1f} s: "
        f"{deploy / up:.2f}x (target <= 1.3x)",
        f"failed health check to previous release healthy {undo:.1f} s (target < 15 s)",
        f"prod status served the kept configuration {kept * 1000:.0f} ms vs loading it in full "
        f"{full * 1000:.0f} ms",
        f"a Python client's least for those logs (interpreter, standard imports, the engine's "
        f"answer) {floor * 1000:.0f} ms vs docker logs {theirs_again * 1000:.0f} ms: "
        f"{floor / theirs_again:.2f}x",
    ]
    print("; ".join(figures))


if __name__ == "__main__":
    main()
