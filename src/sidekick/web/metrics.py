"""``/metrics`` in the Prometheus text format, read from the daemon's records at each scrape."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from sidekick.health import (
    SAVE_TO_START_BUCKETS,
    Heartbeat,
    heartbeat_path,
    read_heartbeat,
    verdict,
)
from sidekick.web.data import Board


class DaemonCollector(Collector):
    def __init__(self, board: Board) -> None:
        self._board = board

    def collect(
        self,
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        store = self._board.store
        yield _gauge("sidekick_agents_running", "Agents with an open run", len(store.active_runs()))
        yield self._runs()
        costs = GaugeMetricFamily(
            "sidekick_cost_usd", "Spend reported by runs, per project", labels=["project"]
        )
        for project, cost in sorted(store.costs().items()):
            costs.add_metric([project], cost)
        yield costs
        yield from self._health()

    def _runs(self) -> CounterMetricFamily:
        runs = CounterMetricFamily(
            "sidekick_runs", "Runs by state and outcome", labels=["state", "outcome"]
        )
        for (state, outcome), count in sorted(run_counts(self._board).items()):
            runs.add_metric([state, outcome], count)
        return runs

    def _health(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        config = self._board.config
        beat = read_heartbeat(heartbeat_path(config.daemon.state_dir))
        healthy, _ = verdict(beat, config.daemon.heartbeat_max_age)
        yield _gauge("sidekick_daemon_healthy", "1 when sidekick check says healthy", healthy)
        if beat is None:
            return
        now = time.time()
        yield _gauge("sidekick_heartbeat_age_seconds", "Since the loop's beat", now - beat.loop_at)
        if beat.last_reconcile_at is not None:
            age = now - beat.last_reconcile_at
            yield _gauge("sidekick_last_reconcile_age_seconds", "Since the last reconcile", age)
        yield _gauge("sidekick_last_reconcile_ok", "1 when it worked", beat.last_reconcile_ok)
        took = beat.last_reconcile_seconds
        yield _gauge("sidekick_reconcile_duration_seconds", "What the last reconcile took", took)
        yield _gauge("sidekick_degraded", "Degraded runtimes or source", len(beat.degraded))
        dead_watcher = any(name.startswith("watch:") for name in beat.dead_threads)
        watcher = bool(beat.watcher_mode) and not dead_watcher
        yield _gauge("sidekick_watcher_alive", "1 while the list watcher runs", watcher)
        yield _gauge(
            "sidekick_dead_threads", "Background threads found dead", len(beat.dead_threads)
        )
        yield save_to_start(beat)


def save_to_start(beat: Heartbeat) -> HistogramMetricFamily:
    """From the watcher seeing a save of the list to an agent start it caused, since the
    daemon started (a restart of the daemon resets it, as a process's counters do)."""
    counts = beat.save_to_start_buckets or [0] * (len(SAVE_TO_START_BUCKETS) + 1)
    buckets, total = [], 0
    for bound, count in zip([*map(str, SAVE_TO_START_BUCKETS), "+Inf"], counts, strict=False):
        total += count
        buckets.append((bound, float(total)))
    return HistogramMetricFamily(
        "sidekick_save_to_start_seconds",
        "From the daemon seeing a save of the list to an agent start that save caused",
        buckets=buckets,
        sum_value=beat.save_to_start_sum,
    )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def run_counts(board: Board) -> dict[tuple[str, str], int]:
    rows = board.requests.run_counts()
    return {(str(state), str(outcome)): int(count) for state, outcome, count in rows}


def metrics_text(board: Board) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(board))
    return generate_latest(registry)
