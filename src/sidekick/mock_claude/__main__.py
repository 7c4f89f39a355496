"""``python -m sidekick.mock_claude``: serve the mock Messages API.

Options and the environment variables they default from:

========================  ================================  =====================
option                    environment variable              default
========================  ================================  =====================
``--host``                ``MOCK_CLAUDE_HOST``              127.0.0.1
``--port``                ``MOCK_CLAUDE_PORT``              8080 (0 picks a free one)
``--scenarios FILE``      ``MOCK_CLAUDE_SCENARIOS``         the packaged default.yaml
``--scenario NAME``       ``MOCK_CLAUDE_SCENARIO``          none: match each request
``--api-key KEY``         ``MOCK_CLAUDE_API_KEYS`` (a,b)    none: any non-empty key
``--budget-usd USD``      ``MOCK_CLAUDE_BUDGET_USD``        unlimited, per key
``--key-budget KEY=USD``  ``MOCK_CLAUDE_KEY_BUDGETS`` (k=1)  none
``--budget-status``       ``MOCK_CLAUDE_BUDGET_STATUS``     400 (or 429)
``--event-delay-ms MS``   ``MOCK_CLAUDE_EVENT_DELAY_MS``    0: a stream is one write
``--log-level LEVEL``     ``MOCK_CLAUDE_LOG_LEVEL``         INFO
========================  ================================  =====================

``--api-key`` and ``--key-budget`` repeat. A spent budget answers 400
``invalid_request_error`` "Your credit balance is too low..." by default,
because that is what the real API answers and what clients treat as final (no
retry); ``--budget-status 429`` answers ``rate_limit_error`` instead.

Once listening it prints ``mock_claude listening on http://HOST:PORT`` on
stdout, then logs one line per request on stderr. SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from sidekick.errors import SidekickError
from sidekick.mock_claude import scenarios
from sidekick.mock_claude.server import MockSettings, build_app

logger = logging.getLogger(__name__)

ENV_PREFIX = "MOCK_CLAUDE_"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in _env(name).split(",") if part.strip()]


def _budget_pair(text: str) -> tuple[str, float]:
    key, sep, amount = text.rpartition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=USD, got {text!r}")
    try:
        return key, float(amount)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of dollars in {text!r}") from None


def _optional_float(text: str) -> float | None:
    return float(text) if text else None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sidekick.mock_claude",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", "8080")))
    p.add_argument("--scenarios", type=Path, default=_env("SCENARIOS") or None)
    p.add_argument(
        "--scenario", default=_env("SCENARIO"), help="play this scenario for every request"
    )
    p.add_argument("--api-key", action="append", default=_env_list("API_KEYS"), dest="api_keys")
    p.add_argument(
        "--budget-usd", type=_optional_float, default=_optional_float(_env("BUDGET_USD"))
    )
    p.add_argument(
        "--key-budget",
        action="append",
        type=_budget_pair,
        dest="key_budgets",
        default=[_budget_pair(item) for item in _env_list("KEY_BUDGETS")],
    )
    p.add_argument(
        "--budget-status", type=int, choices=(400, 429), default=int(_env("BUDGET_STATUS", "400"))
    )
    p.add_argument("--event-delay-ms", type=float, default=float(_env("EVENT_DELAY_MS", "0")))
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"))
    return p


def settings_from(args: argparse.Namespace) -> MockSettings:
    return MockSettings(
        api_keys=frozenset(args.api_keys),
        scenario=args.scenario,
        default_budget_usd=args.budget_usd,
        key_budgets=dict(args.key_budgets),
        budget_status=args.budget_status,
        event_delay_ms=args.event_delay_ms,
    )


async def serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0]
    print(f"mock_claude listening on http://{bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        book = scenarios.load(args.scenarios)
    except SidekickError as exc:
        print(f"mock_claude: {exc}", file=sys.stderr)
        return 2
    if args.scenario and book.named(args.scenario) is None:
        print(f"mock_claude: no scenario named {args.scenario!r} in {book.source}", file=sys.stderr)
        return 2
    asyncio.run(serve(build_app(book, settings_from(args)), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
