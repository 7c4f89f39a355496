"""A Google Sheet as a PrioritySource, through the real gspread client.

Costs: a load is one values read; a write-back is one fresh read plus at most
one batched values update of the daemon's own cells, in rows found by their
Project value in that read (people sort and insert rows; a cached row number
would write into someone else's row). Nothing else is ever fetched: no sheet
metadata, no per-load client set-up.

Every request is paced by a token bucket under the per-user quota and retried
here, and only here, on 429/5xx and connection errors: gspread's plain
HTTPClient does not retry (its BackOffHTTPClient is not used) and
google-auth's AuthorizedSession only re-sends after a 401 token refresh.
google-auth does retry the OAuth token exchange on its own (three attempts),
so a failed token exchange is not retried again here.

``api_base_url`` replaces ``https://sheets.googleapis.com`` in every Sheets
request, for a Sheets-compatible endpoint such as a local stand-in; the OAuth
token exchange goes to the key file's own ``token_uri``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random as random_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient, ParamsType
from gspread.utils import absolute_range_name, rowcol_to_a1

from sidekick import stopping
from sidekick.errors import PrioritySourceError, SourceUnreachable, SourceUnreadable
from sidekick.models import RowUpdate, Snapshot, WriteResult
from sidekick.priorities.base import (
    Header,
    content_version,
    parse_header,
    parse_rows,
    unique_by_name,
)

logger = logging.getLogger(__name__)

GOOGLE_API_BASE_URL = "https://sheets.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
_RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Drive-style quota answers come as 403 with one of these reasons.
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})

T = TypeVar("T")
Grid = list[list[str]]


# --- errors -------------------------------------------------------------------


class SheetsUnavailable(SourceUnreachable):
    """Google kept failing (429, 5xx, no connection) until the retry deadline."""

    def __init__(
        self,
        source: str,
        problem: str,
        operation: str = "",
        last_status: int | None = None,
        attempts: int = 0,
    ) -> None:
        super().__init__(source, problem)
        self.operation, self.last_status, self.attempts = operation, last_status, attempts

    def message(self) -> str:
        status = f"HTTP {self.last_status}" if self.last_status else "no HTTP answer"
        return (
            f"{self.source}: {self.operation} gave up after {self.attempts} attempt(s) "
            f"within the retry deadline; last status: {status} ({self.problem})"
        )


class SheetsRequestRejected(PrioritySourceError):
    """Google refused a request for good (bad range, no access, no such sheet)."""

    def __init__(
        self, source: str, problem: str, operation: str = "", status: int = 0, hint: str = ""
    ) -> None:
        super().__init__(source, problem)
        self.operation, self.status, self.hint = operation, status, hint

    def message(self) -> str:
        hint = f"; {self.hint}" if self.hint else ""
        return (
            f"{self.source}: {self.operation} refused with HTTP {self.status}: {self.problem}{hint}"
        )


class SheetsCredentialsError(PrioritySourceError):
    """The service-account key cannot be used, or the token exchange failed."""

    def __init__(self, source: str, problem: str, credentials_file: str = "") -> None:
        super().__init__(source, problem)
        self.credentials_file = credentials_file

    def message(self) -> str:
        return f"{self.source}: credentials {self.credentials_file}: {self.problem}"


# --- the HTTP client ------------------------------------------------------------


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client, sending Sheets requests to ``api_base_url``."""

    def __init__(self, credentials: Any, api_base_url: str = GOOGLE_API_BASE_URL) -> None:
        super().__init__(credentials)
        self.api_base_url = api_base_url.rstrip("/")

    def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        if endpoint.startswith(GOOGLE_API_BASE_URL + "/"):
            endpoint = self.api_base_url + endpoint[len(GOOGLE_API_BASE_URL) :]
        return super().request(method, endpoint, *args, **kwargs)


def open_client(
    credentials_file: Path, api_base_url: str | None, timeout: float, source: str
) -> SheetsHTTPClient:
    """A client authorised by a service-account key; no request is made yet."""
    try:
        # google-auth ships py.typed but leaves this constructor unannotated.
        credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            str(credentials_file), scopes=list(SCOPES)
        )
    except (OSError, ValueError, KeyError, GoogleAuthError) as exc:
        problem = f"not a usable service-account JSON key ({exc})"
        raise SheetsCredentialsError(source, problem, str(credentials_file)) from None
    client = SheetsHTTPClient(credentials, api_base_url or GOOGLE_API_BASE_URL)
    client.set_timeout(timeout)
    return client


# --- pacing and retries ------------------------------------------------------------


class RequestPacer:
    """A token bucket that keeps every 60-second window at or under the quota.

    A bucket of ``burst`` tokens refilled at ``(per_minute - burst)`` a minute
    lets through at most ``burst + (per_minute - burst)`` requests in any
    minute, so a read and a write go out back to back and the quota still holds.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        burst: int = 2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleep,
    ) -> None:
        if per_minute < 2:
            raise ValueError(f"requests_per_minute must be at least 2, got {per_minute}")
        self.burst = max(1, min(burst, per_minute // 2))
        self.rate = (per_minute - self.burst) / 60.0
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting for it when the bucket is empty."""
        with self._lock:
            self._refill()
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                logger.debug("pacing Sheets requests: waiting %.2f s", wait)
                self._sleep(wait)
                self._refill()
            self._tokens = max(0.0, self._tokens - 1.0)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, bounded by an overall deadline."""

    deadline: float = 60.0
    base: float = 1.0
    cap: float = 32.0

    def delay(self, attempt: int, draw: float) -> float:
        return draw * min(self.cap, self.base * 2.0 ** (attempt - 1))


@dataclass(frozen=True)
class _Failure:
    status: int | None
    problem: str
    retry_after: float | None = None


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _api_problem(exc: APIError) -> str:
    message = str(exc.error.get("message", "")).strip()
    status = exc.error.get("status")
    return f"{status}: {message}" if status else message or "no error message"


def _is_rate_limit(exc: APIError) -> bool:
    errors = exc.error.get("errors") or [{}]
    return exc.response.status_code == 403 and errors[0].get("reason") in _RATE_LIMIT_REASONS


def _rejection_hint(status: int, credentials: str) -> str:
    if status == 403:
        return f"share the sheet with the service account of {credentials} (Editor)"
    if status == 404:
        return "check priority_source.sheets.spreadsheet_id"
    if status == 400:
        return "check priority_source.sheets.worksheet (the tab's title)"
    return ""


# --- the grid ---------------------------------------------------------------------


def grid_version(values: Sequence[Sequence[str]]) -> str:
    """Content version of a sheet's values; trailing blanks do not count, as in the API."""
    rows = [list(row) for row in values]
    for row in rows:
        while row and row[-1] == "":
            row.pop()
    while rows and not rows[-1]:
        rows.pop()
    return content_version(json.dumps(rows, ensure_ascii=False).encode())


def _cells(raw: Any) -> Grid:
    return [[str(cell) for cell in row] for row in raw.get("values", [])]


@dataclass(frozen=True)
class _CellEdit:
    row: int
    column: int
    value: str


@dataclass
class _EditPlan:
    edits: list[_CellEdit] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    absent_columns: set[str] = field(default_factory=set)


def _rows_by_name(grid: Grid, header: Header) -> dict[str, int]:
    """Project name → its row index in this read (rows without a name left out)."""
    column = header.index["Project"]
    names = ((_current(grid, index, column).strip(), index) for index in range(1, len(grid)))
    return unique_by_name((name, index) for name, index in names if name)


def _current(grid: Grid, row: int, column: int) -> str:
    cells = grid[row]
    return cells[column] if column < len(cells) else ""


def _plan_row(grid: Grid, header: Header, row: int, update: RowUpdate, plan: _EditPlan) -> bool:
    changed = False
    for column_name, value in update.cells().items():
        column = header.index.get(column_name)
        if column is None:
            plan.absent_columns.add(column_name)
            continue
        # A daemon cell is one line, as in the CSV file.
        one_line = " ".join(value.splitlines())
        if _current(grid, row, column).strip() != one_line:
            plan.edits.append(_CellEdit(row, column, one_line))
            changed = True
    return changed


def plan_edits(grid: Grid, header: Header, updates: Sequence[RowUpdate]) -> _EditPlan:
    """Find each update's row by Project name in this read and list the cells to change."""
    rows = _rows_by_name(grid, header)
    plan = _EditPlan()
    for update in updates:
        row = rows.get(update.project.strip())
        if row is None:
            plan.missing.append(update.project)
        elif _plan_row(grid, header, row, update, plan):
            plan.written.append(update.project)
    return plan


def apply_edits(grid: Grid, edits: Sequence[_CellEdit]) -> Grid:
    """A copy of the grid with the edits made, as the sheet will read after the update."""
    out = [list(row) for row in grid]
    for edit in edits:
        row = out[edit.row]
        row.extend([""] * (edit.column + 1 - len(row)))
        row[edit.column] = edit.value
    return out


# --- the source ---------------------------------------------------------------------


class SheetsPrioritySource:
    """One worksheet of a Google Sheet as a PrioritySource."""

    def __init__(
        self,
        spreadsheet_id: str,
        worksheet: str,
        credentials_file: Path | str,
        *,
        models: frozenset[str] | None = None,
        requests_per_minute: int = 60,
        retry_deadline: float = 60.0,
        api_base_url: str | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = worksheet
        self.credentials_file = Path(credentials_file)
        self.models = models
        self.api_base_url = api_base_url or GOOGLE_API_BASE_URL
        self.timeout = timeout
        self.backoff = Backoff(deadline=retry_deadline)
        self.pacer = RequestPacer(requests_per_minute, clock=clock, sleep=sleep)
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._client: SheetsHTTPClient | None = None
        self._client_lock = threading.Lock()
        self._warned_columns: set[str] = set()
        self._last: Snapshot | None = None

    @property
    def name(self) -> str:
        return f"sheet {self.spreadsheet_id}/{self.worksheet}"

    @property
    def unreachable(self) -> str:
        """Empty: an outage raises SourceUnreachable, and LastGoodSource keeps its message."""
        return ""

    # --- reading -----------------------------------------------------------------

    def load(self) -> Snapshot:
        grid = self._read("load", self._clock() + self.backoff.deadline)
        last = self._last
        # Parsing is a pure function of the values: the same values, the same list.
        if last is not None and last.version == grid_version(grid):
            return last
        return self._snapshot(grid, self._header(grid))

    def _read(self, operation: str, deadline: float) -> Grid:
        client = self.client()
        params: ParamsType = {"majorDimension": "ROWS", "valueRenderOption": "FORMATTED_VALUE"}
        sheet_range = absolute_range_name(self.worksheet)
        raw = self._call(
            operation,
            deadline,
            lambda: client.values_get(self.spreadsheet_id, sheet_range, params=params),
        )
        return _cells(raw)

    def _header(self, grid: Grid) -> Header:
        if not grid or not any(cell.strip() for cell in grid[0]):
            raise SourceUnreadable(self.name, "row 1: header row required")
        return parse_header(grid[0], self.name, 1)

    def _snapshot(self, grid: Grid, header: Header) -> Snapshot:
        rows = ((number, row) for number, row in enumerate(grid[1:], start=2))
        projects, findings = parse_rows(header, rows, self.name, self.models)
        self._last = Snapshot(tuple(projects), tuple(findings), grid_version(grid))
        return self._last

    # --- writing -----------------------------------------------------------------

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        deadline = self._clock() + self.backoff.deadline
        grid = self._read("write-back read", deadline)
        header = self._header(grid)
        plan = plan_edits(grid, header, updates)
        self._warn_absent(plan.absent_columns)
        if plan.edits:
            self._send(plan.edits, deadline)
            logger.info("%s: wrote %d row(s)", self.name, len(plan.written))
        snapshot = self._snapshot(apply_edits(grid, plan.edits), header)
        return WriteResult(tuple(plan.written), tuple(plan.missing), 1, snapshot.version, snapshot)

    def _send(self, edits: Sequence[_CellEdit], deadline: float) -> None:
        client = self.client()
        data = [
            {
                "range": absolute_range_name(self.worksheet, rowcol_to_a1(e.row + 1, e.column + 1)),
                "values": [[e.value]],
            }
            for e in edits
        ]
        # RAW keeps text as text: no date, number or formula parsing of our cells.
        body = {"valueInputOption": "RAW", "data": data}
        self._call(
            "write-back update",
            deadline,
            lambda: client.values_batch_update(self.spreadsheet_id, body=body),
        )

    def _warn_absent(self, columns: set[str]) -> None:
        for column in sorted(columns - self._warned_columns):
            logger.warning("%s has no %r column; not writing it back", self.name, column)
            self._warned_columns.add(column)

    # --- requests ------------------------------------------------------------------

    def client(self) -> SheetsHTTPClient:
        """The authorised client, made once: later loads cost no set-up request."""
        with self._client_lock:
            if self._client is None:
                self._client = open_client(
                    self.credentials_file, self.api_base_url, self.timeout, self.name
                )
            return self._client

    def _call(self, operation: str, deadline: float, request: Callable[[], T]) -> T:
        """One Sheets request, paced, retried on transient failures until the deadline."""
        attempt = 0
        while True:
            attempt += 1
            self.pacer.acquire()
            try:
                return request()
            except APIError as exc:
                failure = self._api_failure(operation, exc)
            except RefreshError as exc:
                raise self._token_error(operation, attempt, exc) from None
            except (TransportError, OSError) as exc:
                failure = _Failure(None, f"{type(exc).__name__}: {exc}")
            self._wait_to_retry(operation, attempt, failure, deadline)

    def _api_failure(self, operation: str, exc: APIError) -> _Failure:
        status = exc.response.status_code
        if status not in _RETRYABLE_STATUSES and not _is_rate_limit(exc):
            hint = _rejection_hint(status, str(self.credentials_file))
            raise SheetsRequestRejected(self.name, _api_problem(exc), operation, status, hint)
        retry_after = retry_after_seconds(exc.response.headers.get("Retry-After"))
        return _Failure(status, _api_problem(exc), retry_after)

    def _token_error(self, operation: str, attempt: int, exc: RefreshError) -> PrioritySourceError:
        if exc.retryable:
            # google-auth has already retried the exchange (three attempts with backoff).
            problem = f"the OAuth token exchange kept failing: {exc}"
            return SheetsUnavailable(self.name, problem, operation, None, attempt)
        problem = f"the OAuth token exchange failed: {exc}"
        return SheetsCredentialsError(self.name, problem, str(self.credentials_file))

    def _wait_to_retry(
        self, operation: str, attempt: int, failure: _Failure, deadline: float
    ) -> None:
        wait = failure.retry_after
        if wait is None:
            wait = self.backoff.delay(attempt, self._random())
        if self._clock() + wait > deadline:
            raise SheetsUnavailable(self.name, failure.problem, operation, failure.status, attempt)
        logger.warning(
            "%s: %s failed (%s, %s); retry %d in %.2f s",
            self.name,
            operation,
            failure.status or "no answer",
            failure.problem,
            attempt,
            wait,
        )
        self._sleep(wait)
