"""An idle daemon with 50 projects and 10 live agents over 60 s: CPU % of one core and peak RSS.

CPU is the daemon process's own user+system time (from /proc) over the window;
peak RSS is its VmHWM. The agents and their tmux server are not counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from _common import HEADER, kill_tmux, save_by_rename, scratch, write_config

WINDOW = 60.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    root = scratch("idle")
    names = [f"p{i:02d}" for i in range(50)]
    config = write_config(
        root, names, ["sleep", "600"], capacity={"max_agents": 10, "gpu_slots": 0}
    )
    rows = "".join(f"{n},{i},Pending,,,,,,\n" for i, n in enumerate(names))
    save_by_rename(root / "priorities.csv", HEADER + rows)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sidekick", "run", "--config", str(config), "--log-level", "WARNING"]
    )
    try:
        time.sleep(5.0)
        before, started = cpu_seconds(daemon.pid), time.monotonic()
        time.sleep(WINDOW)
        used = cpu_seconds(daemon.pid) - before
        elapsed = time.monotonic() - started
        rss = peak_rss_mb(daemon.pid)
    finally:
        daemon.terminate()
        daemon.wait(10)
        kill_tmux(root / "tmux.sock")
    cpu = 100 * used / elapsed
    print(
        f"idle daemon (50 projects, 10 agents, {elapsed:.0f} s): "
        f"CPU {cpu:.2f} % of a core, peak RSS {rss:.1f} MB"
    )


if __name__ == "__main__":
    main()
