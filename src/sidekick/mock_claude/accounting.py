"""Token counts, simulated cost and per-key credit budgets of the mock API.

Tokens are an approximation, not a tokenizer: one token per four characters
(rounded up, at least one) of the text the model would read or write. Input
counts the system prompt, every text block, tool_use input (as compact JSON),
tool_result content and the tool definitions (as compact JSON); output counts
the reply's text and its tool_use inputs the same way. Real counts differ; the
point is a stable, monotonic figure that tests and budgets can rely on.

Cost uses :data:`PRICES`, US dollars per million tokens, chosen by the first
pattern that occurs in the model name (case-insensitive), else
:data:`DEFAULT_PRICE`. The figures follow Anthropic's public list prices at the
time of writing (Opus 5.x as Claude Code 2.1.330 prices it); they only need
to be plausible.

A budget is checked before a request is served and charged after: the request
that crosses the limit completes, every later one is refused.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Price:
    """US dollars per million input and output tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        total = input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok
        return total / 1_000_000


# Ordered: the first pattern found in the model name wins, so specific names
# (older, dearer Opus releases) come before the family name.
PRICES: tuple[tuple[str, Price], ...] = (
    ("claude-3-opus", Price(15.0, 75.0)),
    ("opus-4-0", Price(15.0, 75.0)),
    ("opus-4-1", Price(15.0, 75.0)),
    ("claude-opus-4-2", Price(15.0, 75.0)),
    ("opus-5", Price(4.0, 20.0)),
    ("opus", Price(5.0, 25.0)),
    ("sonnet", Price(3.0, 15.0)),
    ("claude-3-haiku", Price(0.25, 1.25)),
    ("3-5-haiku", Price(0.8, 4.0)),
    ("haiku", Price(1.0, 5.0)),
)
DEFAULT_PRICE = Price(3.0, 15.0)


def price_for(model: str) -> Price:
    """The price of a model name; unknown names pay :data:`DEFAULT_PRICE`."""
    name = model.casefold()
    for pattern, price in PRICES:
        if pattern in name:
            return price
    return DEFAULT_PRICE


def tokens_for_chars(chars: int) -> int:
    """The documented approximation: a token per four characters, at least one."""
    return max(1, math.ceil(chars / CHARS_PER_TOKEN))


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(_block_chars(block) for block in content)
    return 0


def _block_chars(block: Any) -> int:
    if not isinstance(block, Mapping):
        return 0
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "tool_use":
        return len(_compact(block.get("input", {})))
    if kind == "tool_result":
        return _content_chars(block.get("content", ""))
    if kind == "thinking":
        return len(str(block.get("thinking", "")))
    return 0


def input_chars(body: Mapping[str, Any]) -> int:
    """Characters the model would read for a Messages API request body."""
    chars = _content_chars(body.get("system", ""))
    for message in body.get("messages") or ():
        if isinstance(message, Mapping):
            chars += _content_chars(message.get("content", ""))
    tools = body.get("tools")
    if tools:
        chars += len(_compact(tools))
    return chars


def input_tokens(body: Mapping[str, Any]) -> int:
    """Approximate input tokens of a request body (also what count_tokens answers)."""
    return tokens_for_chars(input_chars(body))


def output_tokens(content: Iterable[Mapping[str, Any]]) -> int:
    """Approximate output tokens of a reply's content blocks."""
    return tokens_for_chars(sum(_block_chars(block) for block in content))


@dataclass
class KeyStats:
    """What one API key has used so far."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    budget_usd: float | None = None

    @property
    def remaining_usd(self) -> float | None:
        if self.budget_usd is None:
            return None
        return max(0.0, self.budget_usd - self.cost_usd)

    @property
    def exhausted(self) -> bool:
        return self.budget_usd is not None and self.cost_usd >= self.budget_usd

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "budget_usd": self.budget_usd,
            "remaining_usd": None if self.remaining_usd is None else round(self.remaining_usd, 6),
        }


@dataclass(frozen=True)
class Charge:
    """The accounting of one served request."""

    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass
class Ledger:
    """Per-key usage and budgets; safe to share between threads.

    ``default_budget_usd`` applies to every key without its own entry in
    ``key_budgets``; None means unlimited.
    """

    default_budget_usd: float | None = None
    key_budgets: Mapping[str, float] = field(default_factory=dict)
    _stats: dict[str, KeyStats] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _entry(self, key: str) -> KeyStats:
        entry = self._stats.get(key)
        if entry is None:
            budget = self.key_budgets.get(key, self.default_budget_usd)
            entry = self._stats[key] = KeyStats(budget_usd=budget)
        return entry

    def exhausted(self, key: str) -> bool:
        """True once the key has spent its whole budget."""
        with self._lock:
            return self._entry(key).exhausted

    def count_request(self, key: str, *, error: bool = False) -> None:
        """Record a request that was not charged (refused, failed or free)."""
        with self._lock:
            entry = self._entry(key)
            entry.requests += 1
            entry.errors += int(error)

    def charge(self, key: str, model: str, tokens_in: int, tokens_out: int) -> Charge:
        """Record a served request and return what it cost."""
        cost = price_for(model).cost(tokens_in, tokens_out)
        with self._lock:
            entry = self._entry(key)
            entry.requests += 1
            entry.input_tokens += tokens_in
            entry.output_tokens += tokens_out
            entry.cost_usd += cost
        return Charge(tokens_in, tokens_out, cost)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Stats per key, as JSON-ready dictionaries."""
        with self._lock:
            return {key: entry.as_json() for key, entry in sorted(self._stats.items())}
