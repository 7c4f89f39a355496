"""Throughput and latency of the mock Claude API for streaming requests.

Starts ``python -m sidekick.mock_claude`` (logging its line per request, as
in use) on an ephemeral 127.0.0.1 port with the packaged agent-demo scenarios
and drives it with 16 concurrent connections. Each request is a streaming
``POST /v1/messages`` whose reply is a text block plus a ``Write`` tool_use
(about 20 SSE events), read to the end. Latency runs from sending the request
to the last byte.

The load generator is ``wrk`` when it is on PATH (``apt-get install -y wrk``):
written in C, it leaves the second core to the server. Without it, 16 aiohttp
clients in this process do the same job, but on a 2-core machine they cost as
much CPU as the server and inflate the latencies they measure.

Three rounds of ROUND_SECONDS each after a warm-up; the medians of the rounds
are printed on the last line, with the generator used::

    mock_claude streaming c=16: 1234 req/s p50=3.1ms p99=12.0ms (wrk)

Run: ``.venv/bin/python bench/bench_mock_claude.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import resources
from pathlib import Path

import aiohttp

CONCURRENCY = 16
ROUNDS = 3
ROUND_SECONDS = 8.0
WARMUP_SECONDS = 2.0
KEY = "sk-bench-0000000000000000"
SCENARIOS = Path(str(resources.files("sidekick.mock_claude") / "scenarios" / "agent-demo.yaml"))
BODY = json.dumps(
    {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "stream": True,
        "system": "You are a careful engineer. " * 40,
        "messages": [{"role": "user", "content": "Please do the sidekick-demo task now."}],
    }
).encode()
HEADERS = {
    "x-api-key": KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}


def start_mock() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sidekick.mock_claude",
            "--port",
            "0",
            "--scenarios",
            str(SCENARIOS),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the per-request log lines are still formatted and written
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("mock_claude listening on "):
        process.kill()
        raise SystemExit(f"mock did not start: {line!r}")
    return process, line.split(" on ", 1)[1].strip()


async def worker(
    session: aiohttp.ClientSession, url: str, until: float, latencies: list[float]
) -> None:
    while time.perf_counter() < until:
        began = time.perf_counter()
        async with session.post(url, data=BODY, headers=HEADERS) as response:
            body = await response.read()
        if response.status != 200 or not body.endswith(b'{"type":"message_stop"}\n\n'):
            raise SystemExit(f"bad reply {response.status}: {body[-200:]!r}")
        latencies.append(time.perf_counter() - began)


async def one_round(session: aiohttp.ClientSession, url: str, seconds: float) -> list[float]:
    latencies: list[float] = []
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(worker(session, url, until, latencies) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    latencies.append(elapsed)  # the last item carries the round's wall time
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Figures = tuple[float, float, float]  # req/s, p50 ms, p99 ms


async def aiohttp_rounds(url: str) -> list[Figures]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    figures: list[Figures] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        await one_round(session, url, WARMUP_SECONDS)
        for _ in range(ROUNDS):
            *latencies, elapsed = await one_round(session, url, ROUND_SECONDS)
            figures.append(
                (
                    len(latencies) / elapsed,
                    percentile(latencies, 0.50) * 1000,
                    percentile(latencies, 0.99) * 1000,
                )
            )
            report(len(figures), figures[-1])
    return figures


WRK_SCRIPT = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["x-api-key"] = "{key}"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["content-type"] = "application/json"
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(output: str, label: str) -> float:
    found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if found is None:
        raise SystemExit(f"no {label} latency in wrk output:\n{output}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def wrk_round(wrk: str, script: Path, url: str, seconds: float) -> Figures:
    argv = [wrk, "-t2", f"-c{CONCURRENCY}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    output = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output or "Socket errors" in output:
        raise SystemExit(f"wrk saw failed requests:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise SystemExit(f"no rate in wrk output:\n{output}")
    return float(rate.group(1)), _wrk_ms(output, "50%"), _wrk_ms(output, "99%")


def wrk_rounds(wrk: str, url: str) -> list[Figures]:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=json.dumps(BODY.decode()), key=KEY))
        wrk_round(wrk, script, url, WARMUP_SECONDS)
        figures = []
        for number in range(1, ROUNDS + 1):
            figures.append(wrk_round(wrk, script, url, ROUND_SECONDS))
            report(number, figures[-1])
    return figures


def report(number: int, figures: Figures) -> None:
    rate, p50, p99 = figures
    print(f"round {number}: {rate:.0f} req/s p50={p50:.1f}ms p99={p99:.1f}ms", flush=True)


def check_reply(url: str) -> None:
    request = urllib.request.Request(url, data=BODY, headers=HEADERS)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    if not body.endswith(b'{"type":"message_stop"}\n\n'):
        raise SystemExit(f"unexpected reply: {body[-200:]!r}")


def bench(base_url: str) -> None:
    url = base_url + "/v1/messages?beta=true"
    check_reply(url)
    wrk = shutil.which("wrk")
    if wrk is not None:
        generator, figures = "wrk", wrk_rounds(wrk, url)
    else:
        generator, figures = "aiohttp", asyncio.run(aiohttp_rounds(url))
    rate, p50, p99 = (statistics.median(column) for column in zip(*figures, strict=True))
    print(
        f"mock_claude streaming c={CONCURRENCY}: {rate:.0f} req/s "
        f"p50={p50:.1f}ms p99={p99:.1f}ms ({generator})"
    )


def main() -> None:
    process, base_url = start_mock()
    try:
        bench(base_url)
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
