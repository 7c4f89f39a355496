"""Listening ports read from a /proc tree: the engine's own listeners are left out.

The real engine's embedded DNS is checked in test_insight_engine.py; here the
other forms /proc can write it in, on files laid out as /proc lays them out.
"""

from __future__ import annotations

from pathlib import Path

from sidekick.insight.processes import Process, listening_ports

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
TCP = (
    HEADER
    # the embedded DNS on 127.0.0.11, the app on every interface and one on loopback only
    + "   0: 0B00007F:A8BF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
    + "   1: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
    + "   2: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0\n"
    # an established connection is not a listener
    + "   3: 0200A8C0:1F40 0300A8C0:D431 01 00000000:00000000 00:00000000 00000000     0\n"
)
TCP6 = (
    HEADER
    # the embedded DNS as an IPv4-mapped address, and an app on every IPv6 interface
    + "   0: 0000000000000000FFFF00000B00007F:9C41 00000000000000000000000000000000:0000 0A"
    " 00000000:00000000 00:00000000 00000000     0\n"
    + "   1: 00000000000000000000000000000000:0BB8 00000000000000000000000000000000:0000 0A"
    " 00000000:00000000 00:00000000 00000000     0\n"
)


def proc_tree(root: Path, pid: int, command: str) -> None:
    here = root / str(pid)
    (here / "net").mkdir(parents=True)
    (here / "cmdline").write_bytes(command.replace(" ", "\0").encode() + b"\0")
    (here / "net" / "tcp").write_text(TCP)
    (here / "net" / "tcp6").write_text(TCP6)


def test_the_embedded_dns_is_left_out_in_both_tables_and_loopback_apps_kept(
    tmp_path: Path,
) -> None:
    proc_tree(tmp_path, 4242, "python3 app.py")
    ports, note = listening_ports([Process(4242, 1, "root", "python3 app.py")], tmp_path)
    assert (ports, note) == ((3000, 5000, 8000), "")
