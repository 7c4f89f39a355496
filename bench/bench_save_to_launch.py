"""Save-to-launch: from a rename-save that makes a project Pending to its tmux session existing.

A real daemon (`sidekick run`) watches a real priorities.csv; each try saves
the list by rename with one more project set to Pending and polls tmux until
that project's session exists. Last line: median and p95 over 30 tries.
"""

from __future__ import annotations

import subprocess
import time

from _common import HEADER, daemon_process, median_p95, save_by_rename, scratch, write_config

TRIES = 30


def session_exists(socket: str, name: str) -> bool:
    result = subprocess.run(
        ["tmux", "-S", socket, "has-session", "-t", f"={name}"], capture_output=True, check=False
    )
    return result.returncode == 0


def main() -> None:
    root = scratch("launch")
    names = [f"p{i:02d}" for i in range(TRIES)]
    config = write_config(
        root, names, ["sleep", "600"], capacity={"max_agents": TRIES + 1, "gpu_slots": 0}
    )
    csv = root / "priorities.csv"
    rows = {name: f"{name},{i},Complete,,,,,," for i, name in enumerate(names)}
    save_by_rename(csv, HEADER + "".join(r + "\n" for r in rows.values()))
    samples = []
    with daemon_process(config):
        time.sleep(2.0)
        for i, name in enumerate(names):
            rows[name] = f"{name},{i},Pending,,,,,,"
            text = HEADER + "".join(r + "\n" for r in rows.values())
            started = time.perf_counter()
            save_by_rename(csv, text)
            while not session_exists(str(root / "tmux.sock"), f"sidekick-{name}"):
                if time.perf_counter() - started > 10:
                    raise SystemExit(f"{name}: no session within 10 s")
            samples.append((time.perf_counter() - started) * 1000)
            time.sleep(0.3)
    median, p95 = median_p95(samples)
    print(f"save-to-launch (n={len(samples)}): median {median:.1f} ms p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
