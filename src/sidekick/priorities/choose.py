"""Build the priority source the configuration asks for: a CSV file or a Google Sheet."""

from __future__ import annotations

from collections.abc import Callable

from sidekick.config import Config, source_kind
from sidekick.priorities.base import PrioritySource
from sidekick.priorities.csv_file import CsvPrioritySource


def build_source(config: Config, announce: Callable[[str], None] | None = None) -> PrioritySource:
    models = frozenset(config.agents)
    if source_kind(config) == "sheets":
        # Imported here: gspread is heavy and only sheet users need it.
        from sidekick.priorities.sheets import SheetsPrioritySource

        sheets = config.priority_source.sheets
        return SheetsPrioritySource(
            spreadsheet_id=sheets.spreadsheet_id,
            worksheet=sheets.worksheet,
            credentials_file=sheets.credentials_file,
            models=models,
            requests_per_minute=sheets.requests_per_minute,
            retry_deadline=sheets.retry_deadline,
            api_base_url=sheets.api_base_url,
        )
    csv = config.priority_source.csv
    return CsvPrioritySource(csv.path, models=models, lock_wait=csv.lock_wait, announce=announce)
