from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containers.helpers import BASE_IMAGE
from tests.integration.compose import SESSION
from tests.polling import wait_until

LINES = 1_000_000
# Prints a million numbered lines (and a few warnings on stderr), then waits.
NOISY = (
    "import sys, time\n"
    "out, err = sys.stdout, sys.stderr\n"
    f"for i in range({LINES}):\n"
    "    out.write(f'line {i} needle\\n' if i % 100000 == 7 else f'line {i}\\n')\n"
    "    if i % 1000 == 0: err.write(f'warn {i}\\n')\n"
    "out.flush(); err.flush(); print('done', flush=True); time.sleep(3600)\n"
)
TICKER = (
    "import sys, time\n"
    "for i in range(5):\n"
    "    print('tick', i, flush=True); print('tock', i, file=sys.stderr, flush=True)\n"
    "    time.sleep(0.2)\n"
    "time.sleep(3600)\n"
)


class LogsProject:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.production = root / "production"
        self.production.mkdir(parents=True)
        self.name = f"{SESSION}-logs"
        (self.production / "noisy.py").write_text(NOISY)
        (self.production / "ticker.py").write_text(TICKER)
        service = "    image: {image}\n    init: true\n    volumes: ['./:/code:ro']\n"
        service += "    command: ['python3', '/code/{script}']\n"
        compose = "services:\n"
        for name, script in (("noisy", "noisy.py"), ("ticker", "ticker.py")):
            compose += f"  {name}:\n" + service.format(image=BASE_IMAGE, script=script)
        (self.production / "compose.yaml").write_text(compose)
        self.config = root / "config.yaml"
        self.config.write_text(
            f"daemon:\n  state_dir: {root / 'state'}\nprojects:\n  Noise:\n"
            f"    directory: {root / 'workspace'}\n    production:\n"
            f"      path: {self.production}\n      compose_project: {self.name}\n"
        )
        (root / "workspace").mkdir()

    def compose(self, *args: str) -> None:
        argv = ["docker", "compose", "-p", self.name, "-f", str(self.production / "compose.yaml")]
        subprocess.run([*argv, *args], check=True, capture_output=True, timeout=180)

    def peak_kib(self, *args: str) -> tuple[list[str], int]:
        """The lines a logs command printed and its peak resident memory."""
        argv = [sys.executable, "-m", "sidekick", "prod", "logs", "Noise", *args]
        argv += ["--config", str(self.config)]
        measure = (
            "import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, check=True)\n"
            "sys.stdout.buffer.write(done.stdout)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", measure, *argv], capture_output=True, check=True, timeout=300
        )
        *lines, peak = result.stdout.decode().splitlines()
        return [line.split("| ", 1)[1] for line in lines], int(peak)

    def logs(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        argv = [sys.executable, "-m", "sidekick", "prod", "logs", "Noise", *args]
        return subprocess.run(
            [*argv, "--config", str(self.config)],
            capture_output=True,
            check=False,
            timeout=300,
        )


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory, engine_ready: None) -> Iterator[LogsProject]:
    project = LogsProject(tmp_path_factory.mktemp("logs"))
    project.compose("up", "-d")
    try:
        wait_until(
            lambda: b"done" in project.logs("noisy", "--tail", "1").stdout,
            timeout=120,
            what="the noisy service printed its million lines",
            step=0.5,
        )
        yield project
    finally:
        project.compose("down", "-v", "--timeout", "1")


def test_tail_gives_the_last_lines_of_each_service_with_its_prefix(noisy: LogsProject) -> None:
    result = noisy.logs("noisy", "--tail", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert [line.split("| ", 1)[1] for line in lines] == [
        f"line {LINES - 2}",
        f"line {LINES - 1}",
        "done",
    ]
    assert all(line.startswith("noisy  | ") for line in lines)


def test_stderr_stays_on_stderr(noisy: LogsProject) -> None:
    result = noisy.logs("ticker")
    assert result.stdout.decode().splitlines() == [f"ticker  | tick {i}" for i in range(5)]
    assert result.stderr.decode().splitlines() == [f"ticker  | tock {i}" for i in range(5)]


def test_grep_filters_the_whole_million_line_log_with_flat_memory(noisy: LogsProject) -> None:
    small = noisy.peak_kib("noisy", "--tail", "1")
    found, peak = noisy.peak_kib("noisy", "--grep", r"needle$")
    assert found == [f"line {i} needle" for i in range(7, LINES, 100000)]
    # The log is 50 MB; reading all of it costs no more memory than reading one line.
    assert peak - small[1] < 20_000, f"{peak} KiB for the whole log, {small[1]} KiB for one line"


def test_since_and_until_bound_the_lines_in_time(noisy: LogsProject) -> None:
    stamped = noisy.logs("ticker", "--timestamps").stdout.decode().splitlines()
    times = [line.split("| ", 1)[1].split(" ", 1)[0] for line in stamped]
    assert len(times) == 5, stamped
    between = noisy.logs("ticker", "--since", times[1], "--until", times[3]).stdout.decode()
    ticks = [line.split("| ", 1)[1] for line in between.splitlines()]
    assert "tick 0" not in ticks and "tick 4" not in ticks and "tick 2" in ticks
    assert noisy.logs("ticker", "--since", "1h", "--tail", "2").stdout.endswith(b"tick 4\n")


def test_services_merge_in_time_order_and_json_names_each(noisy: LogsProject) -> None:
    result = noisy.logs("ticker", "noisy", "--tail", "2", "--json")
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert {r["service"] for r in records} == {"noisy", "ticker"}
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    assert {r["stream"] for r in records} <= {"stdout", "stderr"}


def test_a_bad_time_or_regex_is_a_usage_error(noisy: LogsProject) -> None:
    result = noisy.logs("--since", "yesterday-ish")
    assert result.returncode == 2 and b"argument --since: not a time" in result.stderr
    result = noisy.logs("--until", "soon")
    assert result.returncode == 2 and b"argument --until: not a time" in result.stderr
    result = noisy.logs("--grep", "(")
    assert result.returncode == 2
    assert b"argument --grep: not a regular expression" in result.stderr


def test_follow_streams_lines_as_they_come_until_stopped(noisy: LogsProject) -> None:
    argv = [sys.executable, "-m", "sidekick", "prod", "logs", "Noise", "ticker", "--follow"]
    follower = subprocess.Popen(
        [*argv, "--tail", "2", "--config", str(noisy.config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == b"ticker  | tick 4\n"
        assert follower.poll() is None, "a followed log keeps streaming"
    finally:
        follower.terminate()
        follower.wait(timeout=10)
