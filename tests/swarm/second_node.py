"""A second Docker engine on this machine, in a network namespace of its own, as a swarm node.

It has its own data root, exec root, pid file and socket, no bridge and no
iptables rules, and reaches the manager through a veth pair. It is started
with ``nsenter --net=...`` (``ip netns exec`` remounts /sys, and the engine
then finds no devices cgroup). Images move over with save | load: nothing is
pulled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

NETNS_DIR = Path("/var/run/netns")
START_TIMEOUT = 60.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class SecondEngine:
    """One extra engine; ``start`` it, ``join`` it to a swarm, ``stop`` it (idempotent)."""

    root: Path
    subnet: str = "10.213.7"
    name: str = field(default_factory=lambda: f"sk{uuid.uuid4().hex[:8]}")
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def address(self) -> str:
        return f"{self.subnet}.2"

    @property
    def socket(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def client(self) -> Any:
        """The SDK's client for this engine (typed loosely: the SDK has no annotations)."""
        return docker.DockerClient(base_url=self.socket, timeout=120)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._network()
        command = [
            "nsenter",
            f"--net={NETNS_DIR / self.name}",
            "dockerd",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            f"--host={self.socket}",
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            "--storage-driver=overlay2",
        ]
        # Nothing can be pulled here: without this the node tries each task's image at
        # the registry first and waits ~20 s for the lookup to time out.
        env = {**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_answering()

    def _network(self) -> None:
        host_end, node_end = f"{self.name}h", f"{self.name}n"
        _ip("netns", "add", self.name)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", node_end)
        _ip("link", "set", node_end, "netns", self.name)
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", host_end)
        _ip("link", "set", host_end, "up")
        inside = ["-n", self.name]
        _ip(*inside, "addr", "add", f"{self.address}/24", "dev", node_end)
        _ip(*inside, "link", "set", node_end, "up")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "route", "add", "default", "via", f"{self.subnet}.1")

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the second dockerd exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(Exception):
                client = self.client()
                client.ping()
                client.close()
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the second dockerd never answered: {self.log.read_text()[-2000:]}"
                )
            time.sleep(0.2)

    def unplug(self) -> None:
        """Cut its network, as a machine that loses power or its link would be to the manager."""
        _ip("link", "set", f"{self.name}h", "down")

    def plug_in(self) -> None:
        _ip("link", "set", f"{self.name}h", "up")

    def join(self, manager: Any, manager_address: str, labels: dict[str, str]) -> str:
        """Join the manager's swarm as a worker and label the node; its node id."""
        token = manager.inspect_swarm()["JoinTokens"]["Worker"]
        client = self.client()
        try:
            client.api.join_swarm(
                [f"{manager_address}:2377"],
                token,
                listen_addr=f"{self.address}:2377",
                advertise_addr=self.address,
            )
            self.node_id = str(client.api.info()["Swarm"]["NodeID"])
        finally:
            client.close()
        node = manager.inspect_node(self.node_id)
        spec = {**node["Spec"], "Labels": {**node["Spec"].get("Labels", {}), **labels}}
        manager.update_node(self.node_id, node["Version"]["Index"], spec)
        return self.node_id

    def load_image(self, manager: Any, image: str) -> None:
        """Copy an image from the first engine (docker save | docker load)."""
        client = self.client()
        try:
            client.api.load_image(b"".join(manager.get_image(image)))
        finally:
            client.close()

    def stop(self, manager: Any | None = None) -> None:
        if self.node_id and manager is not None:
            with contextlib.suppress(Exception):
                client = self.client()
                client.api.leave_swarm(force=True)
                client.close()
            with contextlib.suppress(docker.errors.APIError):
                manager.remove_node(self.node_id, force=True)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "delete", self.name)
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("link", "delete", f"{self.name}h")
        self._remove_root()

    def _remove_root(self) -> None:
        # The engine unmounts its layers when it stops; anything left is unmounted first.
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        inside = [m.split()[1] for m in mounts if m.split()[1].startswith(str(self.root))]
        for point in sorted(inside, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def can_run_second_engine() -> str:
    """Empty when this machine can run one; else what is missing."""
    if os.geteuid() != 0:
        return "a second engine needs root (network namespaces, dockerd)"
    for tool in ("dockerd", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""
