"""Keep the daemon process alive inside a container without restarting the container.

The container's init (tini) runs ``sidekick supervise``, which runs ``sidekick
run`` as a child and starts it again if it dies. The agents' tmux server is a
separate daemonised process, so neither a daemon crash nor its restart touches
the agents; the new daemon adopts them. SIGTERM and SIGINT are passed to the
child and end the supervision once the child has stopped; they cut a restart
backoff short, so ``docker compose stop`` never waits out its grace period.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

from sidekick.stopping import StopRequest

logger = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
HEALTHY_RUN = 60.0
# How often a running child is checked for its exit while no stop comes.
CHILD_POLL = 0.2


class Supervisor:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        stop: StopRequest | None = None,
        clock: Callable[[], float] = time.monotonic,
        first_backoff: float = 1.0,
    ) -> None:
        self.argv = list(argv)
        self.stop = stop or StopRequest()
        self._clock = clock
        self._first_backoff = first_backoff

    def run(self) -> int:
        backoff = self._first_backoff
        while True:
            started = self._clock()
            code = self._run_child()
            if self.stop.requested:
                return code
            ran_for = self._clock() - started
            backoff = (
                self._first_backoff if ran_for > HEALTHY_RUN else min(backoff * 2, MAX_BACKOFF)
            )
            logger.error(
                "daemon exited with %d after %.0f s; restarting in %.0f s", code, ran_for, backoff
            )
            if self.stop.wait(backoff):
                return code

    def _run_child(self) -> int:
        child = subprocess.Popen(self.argv)
        while not self.stop.wait(CHILD_POLL):
            code = child.poll()
            if code is not None:
                return code
        child.send_signal(self.stop.signum or signal.SIGTERM)
        return child.wait()


def supervise(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervise: %(message)s")
    supervisor = Supervisor(argv)
    signal.signal(signal.SIGTERM, supervisor.stop.on_signal)
    signal.signal(signal.SIGINT, supervisor.stop.on_signal)
    return supervisor.run()
