"""A mock of the Anthropic Messages API for developing and testing without a paid API.

Run it alone::

    python -m sidekick.mock_claude --host 0.0.0.0 --port 8080 \\
        --scenarios my-scenarios.yaml --api-key sk-test --budget-usd 5

then point any client at it (``ANTHROPIC_BASE_URL=http://127.0.0.1:8080``).
Every option also reads an environment variable (see :mod:`.__main__`).
Scenarios are described in :mod:`.scenarios`, token and cost rules in
:mod:`.accounting`, the routes and the ``x-mock-*`` headers in :mod:`.server`.
"""

from __future__ import annotations

from sidekick.mock_claude.scenarios import ScenarioBook, ScenarioError, load, parse
from sidekick.mock_claude.server import MockSettings, build_app

__all__ = ["MockSettings", "ScenarioBook", "ScenarioError", "build_app", "load", "parse"]
