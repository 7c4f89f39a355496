"""Wall time of `sidekick check` and `sidekick status` against a daemon's state, median of 20."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import running_daemon

RUNS = 20


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    with running_daemon("cli", projects=50, agents=10) as (config, _pid):
        time.sleep(3.0)
        base = [sys.executable, "-m", "sidekick"]
        check = [timed([*base, "check", "--config", str(config)]) for _ in range(RUNS)]
        status = [timed([*base, "status", "--config", str(config)]) for _ in range(RUNS)]
    print(
        f"sidekick check median {statistics.median(check):.0f} ms; "
        f"sidekick status median {statistics.median(status):.0f} ms (n={RUNS} each)"
    )


if __name__ == "__main__":
    main()
