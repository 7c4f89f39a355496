"""Fixtures for the mock Claude API tests: one shared mock per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.mockapi import MockServer, mock_server

SCENARIOS = Path(__file__).with_name("scenarios.yaml")
KEY = "sk-test-mock-primary-0001"
OTHER_KEY = "sk-test-mock-other-0002"


@pytest.fixture(scope="session")
def mock() -> Iterator[MockServer]:
    """The mock with the test scenarios, accepting KEY and OTHER_KEY."""
    with mock_server(SCENARIOS, api_keys=[KEY, OTHER_KEY]) as server:
        yield server


@pytest.fixture(scope="session")
def mock_url(mock: MockServer) -> str:
    return mock.base_url


@pytest.fixture
def client(mock_url: str) -> anthropic.Anthropic:
    """An SDK client that never retries, so every fault is seen as it is."""
    return anthropic.Anthropic(base_url=mock_url, api_key=KEY, max_retries=0, timeout=10)
