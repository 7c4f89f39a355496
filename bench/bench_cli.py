"""Wall time of `sidekick check` and `sidekick status` against a daemon's state, median of 20."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import HEADER, kill_tmux, save_by_rename, scratch, write_config

RUNS = 20


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    root = scratch("cli")
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
        time.sleep(3.0)
        base = [sys.executable, "-m", "sidekick"]
        check = [timed([*base, "check", "--config", str(config)]) for _ in range(RUNS)]
        status = [timed([*base, "status", "--config", str(config)]) for _ in range(RUNS)]
    finally:
        daemon.terminate()
        daemon.wait(10)
        kill_tmux(root / "tmux.sock")
    print(
        f"sidekick check median {statistics.median(check):.0f} ms; "
        f"sidekick status median {statistics.median(status):.0f} ms (n={RUNS} each)"
    )


if __name__ == "__main__":
    main()
