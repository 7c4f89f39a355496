"""An idle daemon with 50 projects and 10 live agents over 60 s: CPU % of one core and peak RSS.

CPU is the daemon process's own user+system time (from /proc) over the window;
peak RSS is its VmHWM. The agents and their tmux server are not counted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _common import running_daemon

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
    with running_daemon("idle", projects=50, agents=10) as (_config, pid):
        time.sleep(5.0)
        before, started = cpu_seconds(pid), time.monotonic()
        time.sleep(WINDOW)
        used = cpu_seconds(pid) - before
        elapsed = time.monotonic() - started
        rss = peak_rss_mb(pid)
    cpu = 100 * used / elapsed
    print(
        f"idle daemon (50 projects, 10 agents, {elapsed:.0f} s): "
        f"CPU {cpu:.2f} % of a core, peak RSS {rss:.1f} MB"
    )


if __name__ == "__main__":
    main()
