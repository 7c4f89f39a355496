"""Keep the daemon process alive inside a container without restarting the container.

The container's init (tini) runs ``sidekick supervise``, which runs ``sidekick
run`` as a child and starts it again if it dies. The agents' tmux server is a
separate daemonised process, so neither a daemon crash nor its restart touches
the agents; the new daemon adopts them. SIGTERM and SIGINT are passed to the
child and end the supervision once the child has stopped.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from types import FrameType

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
HEALTHY_RUN = 60.0


class Supervisor:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.argv = list(argv)
        self._clock = clock
        self._sleep = sleep
        self._stop_signal = 0

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    @property
    def _stopping(self) -> bool:
        return self._stop_signal != 0

    def run(self) -> int:
        backoff = 1.0
        while True:
            started = self._clock()
            code = self._run_child()
            if self._stopping:
                return code
            ran_for = self._clock() - started
            backoff = 1.0 if ran_for > HEALTHY_RUN else min(backoff * 2, MAX_BACKOFF)
            logger.error(
                "daemon exited with %d after %.0f s; restarting in %.0f s", code, ran_for, backoff
            )
            self._sleep(backoff)
            if self._stopping:
                return code

    def _run_child(self) -> int:
        child = subprocess.Popen(self.argv)
        forwarded = False
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                if self._stopping and not forwarded:
                    child.send_signal(self._stop_signal)
                    forwarded = True


def supervise(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervise: %(message)s")
    supervisor = Supervisor(argv)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    return supervisor.run()
