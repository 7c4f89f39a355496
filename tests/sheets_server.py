"""A local stand-in for the Google Sheets v4 API and Google's OAuth token endpoint.

Google cannot be reached from the test machines, so the real gspread and
google-auth code talks to this server on 127.0.0.1 instead. It implements what
the Sheets source calls, the way Google answers it:

- ``POST /token``: the service-account JWT grant; the assertion's RS256
  signature is checked against the public half of the key written by
  :func:`write_service_account_key`, and a bearer token is issued;
- ``GET /v4/spreadsheets/{id}``: spreadsheet metadata (tabs and their sizes);
- ``GET /v4/spreadsheets/{id}/values/{range}`` and ``values:batchGet``:
  formatted values, trailing empty cells and rows trimmed as Google does;
- ``POST /v4/spreadsheets/{id}/values:batchUpdate``: all ranges or none.

Every Sheets request needs a token it issued. Requests are counted by kind,
failures (429/5xx, with ``Retry-After``) can be queued, and hooks let a
"person" edit the grid right before a given request is served.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as auth_exceptions
from google.auth import jwt
from pytest import MonkeyPatch

Grid = list[list[str]]

# google-auth puts Google's token endpoint in the assertion's audience whatever
# the key file's token_uri says, and Google checks exactly that.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"

TOKEN = "token"
METADATA = "spreadsheets.get"
VALUES_GET = "values.get"
VALUES_BATCH_GET = "values.batchGet"
VALUES_BATCH_UPDATE = "values.batchUpdate"
PROXY_CONNECT = "proxy.connect"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "BAD_GATEWAY",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_ROUTES = (
    ("POST", re.compile(r"^/token$"), TOKEN),
    ("GET", re.compile(r"^/v4/spreadsheets/([^/:]+)/values/([^/]+)$"), VALUES_GET),
    ("GET", re.compile(r"^/v4/spreadsheets/([^/:]+)/values:batchGet$"), VALUES_BATCH_GET),
    ("POST", re.compile(r"^/v4/spreadsheets/([^/:]+)/values:batchUpdate$"), VALUES_BATCH_UPDATE),
    ("GET", re.compile(r"^/v4/spreadsheets/([^/:]+)$"), METADATA),
)


class RangeError(ValueError):
    """A range Google would refuse with 'Unable to parse range'."""


# --- A1 notation ------------------------------------------------------------------


def column_letters(index: int) -> str:
    """0-based column index to letters: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def column_index(letters: str) -> int:
    """Letters to a 0-based column index: A → 0, AA → 26."""
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def split_range(text: str) -> tuple[str, str]:
    """``'It''s'!A1:B2`` → (``It's``, ``A1:B2``); a bare title has no A1 part."""
    if not text.startswith("'"):
        title, _, a1 = text.partition("!")
        return title, a1
    match = re.fullmatch(r"'((?:[^']|'')*)'(?:!(.*))?", text, re.DOTALL)
    if match is None:
        raise RangeError(text)
    return match.group(1).replace("''", "'"), match.group(2) or ""


_CELL = re.compile(r"([A-Za-z]*)(\d*)")


@dataclass(frozen=True)
class Box:
    """A 0-based, end-exclusive rectangle; None is unbounded."""

    top: int = 0
    left: int = 0
    bottom: int | None = None
    right: int | None = None


def _corner(text: str) -> tuple[int | None, int | None]:
    match = _CELL.fullmatch(text)
    if match is None or not text:
        raise RangeError(text)
    letters, digits = match.groups()
    row = int(digits) - 1 if digits else None
    column = column_index(letters) if letters else None
    if row is not None and row < 0:
        raise RangeError(text)
    return row, column


def parse_box(a1: str) -> Box:
    if not a1:
        return Box()
    first, _, second = a1.partition(":")
    top, left = _corner(first)
    if not second:
        return Box(top or 0, left or 0, (top or 0) + 1, (left or 0) + 1)
    bottom, right = _corner(second)
    return Box(
        top or 0,
        left or 0,
        None if bottom is None else bottom + 1,
        None if right is None else right + 1,
    )


def trimmed(grid: Iterable[list[str]]) -> Grid:
    """What the API returns: no trailing empty cells in a row, no trailing empty rows."""
    rows = [list(row) for row in grid]
    for row in rows:
        while row and row[-1] == "":
            row.pop()
    while rows and not rows[-1]:
        rows.pop()
    return rows


def cut(grid: Grid, box: Box) -> Grid:
    rows = grid[box.top : box.bottom]
    return trimmed(row[box.left : box.right] for row in rows)


def as_text(value: Any) -> str:
    """A RAW value as the formatted value Google reads back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- requests and answers -------------------------------------------------------------


@dataclass
class Reply:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


def google_error(code: int, message: str, headers: Mapping[str, str] | None = None) -> Reply:
    status = _STATUS_NAMES.get(code, "UNKNOWN")
    body = {"error": {"code": code, "message": message, "status": status}}
    return Reply(code, body, dict(headers or {}))


@dataclass
class Failure:
    status: int
    kinds: frozenset[str] | None
    retry_after: str | None = None


@dataclass
class Call:
    """One request as the stand-in saw it."""

    kind: str
    status: int
    spreadsheet_id: str = ""


# --- the server ---------------------------------------------------------------------


class SheetsStandIn:
    """The stand-in: spreadsheets of string grids behind a real HTTP server."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.spreadsheets: dict[str, dict[str, Grid]] = {}
        self.forbidden: set[str] = set()
        self.calls: list[Call] = []
        self.update_bodies: list[dict[str, Any]] = []
        self._failures: list[Failure] = []
        self._hooks: list[tuple[str, Callable[[], None]]] = []
        self._observers: list[Callable[[str], None]] = []
        self._keys: dict[str, bytes] = {}
        self._tokens: set[str] = set()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # --- life cycle ---

    def start(self) -> SheetsStandIn:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="sheets-stand-in",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SheetsStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def proxy_environment(self) -> dict[str, str]:
        """Environment that keeps every HTTPS request of the process on 127.0.0.1.

        google-auth 2.5x looks up the account's "Regional Access Boundary" at
        iamcredentials.googleapis.com in a background thread after a token
        refresh; with these variables that lookup reaches this server as a
        proxy CONNECT, which it refuses (and counts) like a strict corporate
        proxy, and google-auth carries on without it. Requests to 127.0.0.1
        bypass any proxy.
        """
        local = "127.0.0.1,localhost"
        env = {"https_proxy": self.base_url, "no_proxy": local}
        return env | {name.upper(): value for name, value in env.items()}

    # --- the sheets ---

    def add_sheet(self, spreadsheet_id: str, title: str, rows: Iterable[Iterable[str]]) -> Sheet:
        with self.lock:
            tabs = self.spreadsheets.setdefault(spreadsheet_id, {})
            tabs[title] = [list(row) for row in rows]
        return Sheet(self, spreadsheet_id, title)

    def trust(self, key_id: str, public_pem: bytes) -> None:
        """Accept JWT grants signed by this key (the key file's private_key_id)."""
        self._keys[key_id] = public_pem

    def revoke_tokens(self) -> None:
        """Every issued token stops working, as when one expires early."""
        with self.lock:
            self._tokens.clear()

    # --- counting ---

    def count(self, *kinds: str) -> int:
        with self.lock:
            return sum(1 for c in self.calls if not kinds or c.kind in kinds)

    def sheets_requests(self) -> int:
        """Requests to the Sheets API, the ones the per-user quota counts."""
        with self.lock:
            return sum(1 for c in self.calls if c.kind not in (TOKEN, PROXY_CONNECT))

    def kinds(self) -> Counter[str]:
        with self.lock:
            return Counter(c.kind for c in self.calls if c.kind not in (TOKEN, PROXY_CONNECT))

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.update_bodies.clear()

    # --- trouble on demand ---

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | float | None = None,
        kinds: Iterable[str] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``."""
        after = None if retry_after is None else str(retry_after)
        only = None if kinds is None else frozenset(kinds)
        with self.lock:
            self._failures.extend(Failure(status, only, after) for _ in range(times))

    def recover(self) -> None:
        """Drop every failure still queued: the outage is over."""
        with self.lock:
            self._failures.clear()

    def before(self, kind: str, action: Callable[[], None]) -> None:
        """Run ``action`` once, right before the next request of this kind is served."""
        with self.lock:
            self._hooks.append((kind, action))

    def observe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(kind)`` as each request arrives, before it is answered."""
        with self.lock:
            self._observers.append(callback)

    # --- serving ---

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request; ``headers`` has lower-case names."""
        path, _, query = target.partition("?")
        kind, groups = _route(method, path)
        if kind is None:
            return google_error(404, f"no such endpoint: {method} {path}")
        self._run_hooks(kind)
        reply = self._answer(kind, groups, parse_qs(query), headers, body)
        with self.lock:
            spreadsheet_id = unquote(groups[0]) if groups else ""
            self.calls.append(Call(kind, reply.status, spreadsheet_id))
        return reply

    def _run_hooks(self, kind: str) -> None:
        with self.lock:
            observers = list(self._observers)
        for observer in observers:
            observer(kind)
        with self.lock:
            due = [action for k, action in self._hooks if k == kind]
            self._hooks = [(k, action) for k, action in self._hooks if k != kind]
        for action in due:
            action()

    def _take_failure(self, kind: str) -> Failure | None:
        with self.lock:
            for index, failure in enumerate(self._failures):
                if failure.kinds is None or kind in failure.kinds:
                    return self._failures.pop(index)
        return None

    def _answer(
        self,
        kind: str,
        groups: tuple[str, ...],
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Reply:
        failure = self._take_failure(kind)
        if failure is not None:
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return google_error(failure.status, "injected failure", extra)
        if kind == TOKEN:
            return self._token(body)
        if not self._authorised(headers):
            return google_error(401, "Request had invalid authentication credentials.")
        spreadsheet_id = unquote(groups[0])
        with self.lock:
            return self._sheets(kind, spreadsheet_id, groups, query, body)

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self.lock:
            return scheme == "Bearer" and token in self._tokens

    def _token(self, body: bytes) -> Reply:
        form = parse_qs(body.decode())
        if form.get("grant_type") != [JWT_GRANT]:
            return Reply(400, {"error": "unsupported_grant_type"})
        try:
            claims = jwt.decode(  # type: ignore[no-untyped-call]
                form["assertion"][0], certs=self._keys, audience=GOOGLE_TOKEN_AUDIENCE
            )
        except (KeyError, ValueError, auth_exceptions.GoogleAuthError) as exc:
            return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
        if SHEETS_SCOPE not in str(claims.get("scope", "")).split():
            return Reply(400, {"error": "invalid_scope", "error_description": "no Sheets scope"})
        token = secrets.token_urlsafe(24)
        with self.lock:
            self._tokens.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _sheets(
        self,
        kind: str,
        spreadsheet_id: str,
        groups: tuple[str, ...],
        query: dict[str, list[str]],
        body: bytes,
    ) -> Reply:
        tabs = self.spreadsheets.get(spreadsheet_id)
        if tabs is None:
            return google_error(404, "Requested entity was not found.")
        if spreadsheet_id in self.forbidden:
            return google_error(403, "The caller does not have permission")
        try:
            return self._dispatch(kind, spreadsheet_id, tabs, groups, query, body)
        except RangeError as exc:
            return google_error(400, f"Unable to parse range: {exc}")

    def _dispatch(
        self,
        kind: str,
        spreadsheet_id: str,
        tabs: dict[str, Grid],
        groups: tuple[str, ...],
        query: dict[str, list[str]],
        body: bytes,
    ) -> Reply:
        if kind == METADATA:
            return Reply(200, _metadata(spreadsheet_id, tabs))
        if kind == VALUES_GET:
            return Reply(200, _value_range(tabs, unquote(groups[1])))
        if kind == VALUES_BATCH_GET:
            ranges = query.get("ranges", [])
            value_ranges = [_value_range(tabs, r) for r in ranges]
            return Reply(200, {"spreadsheetId": spreadsheet_id, "valueRanges": value_ranges})
        request = json.loads(body or b"{}")
        self.update_bodies.append(request)
        return _batch_update(spreadsheet_id, tabs, request)


def _route(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
    for route_method, pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match is not None and route_method == method:
            return kind, match.groups()
    return None, ()


def _tab(tabs: dict[str, Grid], title: str, text: str) -> Grid:
    grid = tabs.get(title)
    if grid is None:
        raise RangeError(text)
    return grid


def _quoted(title: str) -> str:
    return "'{}'".format(title.replace("'", "''"))


def _value_range(tabs: dict[str, Grid], text: str) -> dict[str, Any]:
    title, a1 = split_range(text)
    grid = _tab(tabs, title, text)
    box = parse_box(a1)
    values = cut(grid, box)
    width = max((len(row) for row in values), default=1)
    end = f"{column_letters(box.left + width - 1)}{box.top + max(len(values), 1)}"
    out: dict[str, Any] = {
        "range": f"{_quoted(title)}!{column_letters(box.left)}{box.top + 1}:{end}",
        "majorDimension": "ROWS",
    }
    if values:
        out["values"] = values
    return out


def _metadata(spreadsheet_id: str, tabs: dict[str, Grid]) -> dict[str, Any]:
    sheets = [
        {
            "properties": {
                "sheetId": index,
                "title": title,
                "index": index,
                "sheetType": "GRID",
                "gridProperties": {
                    "rowCount": max(1000, len(grid)),
                    "columnCount": max(26, *(len(r) for r in grid), 0),
                },
            }
        }
        for index, (title, grid) in enumerate(tabs.items())
    ]
    properties = {"title": f"stand-in {spreadsheet_id}", "locale": "en_US"}
    return {"spreadsheetId": spreadsheet_id, "properties": properties, "sheets": sheets}


def _writes(tabs: dict[str, Grid], data: list[dict[str, Any]]) -> list[tuple[Grid, Box, Grid]]:
    """Every range of a batch resolved before any is written: the batch is all or nothing."""
    out = []
    for item in data:
        title, a1 = split_range(item["range"])
        grid = _tab(tabs, title, item["range"])
        values = [[as_text(v) for v in row] for row in item.get("values", [])]
        out.append((grid, parse_box(a1), values))
    return out


def _write(grid: Grid, box: Box, values: Grid) -> int:
    cells = 0
    for offset, row_values in enumerate(values):
        row_index = box.top + offset
        while len(grid) <= row_index:
            grid.append([])
        row = grid[row_index]
        row.extend([""] * (box.left + len(row_values) - len(row)))
        row[box.left : box.left + len(row_values)] = row_values
        cells += len(row_values)
    return cells


def _batch_update(spreadsheet_id: str, tabs: dict[str, Grid], request: dict[str, Any]) -> Reply:
    if request.get("valueInputOption") not in ("RAW", "USER_ENTERED"):
        return google_error(400, "Invalid valueInputOption")
    writes = _writes(tabs, request.get("data", []))
    counts = [_write(grid, box, values) for grid, box, values in writes]
    responses = [{"spreadsheetId": spreadsheet_id, "updatedCells": n} for n in counts]
    total = sum(counts)
    payload = {
        "spreadsheetId": spreadsheet_id,
        "totalUpdatedCells": total,
        "totalUpdatedSheets": len({id(g) for g, _, _ in writes}),
        "responses": responses,
    }
    return Reply(200, payload)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; with Nagle on, each answer waits ~40 ms for an ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_CONNECT(self) -> None:
        standin: SheetsStandIn = self.server.standin  # type: ignore[attr-defined]
        with standin.lock:
            standin.calls.append(Call(PROXY_CONNECT, 403, self.path))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        standin: SheetsStandIn = self.server.standin  # type: ignore[attr-defined]
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = standin.handle(method, self.path, headers, body)
        data = json.dumps(reply.payload).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the stand-in's calls are in ``SheetsStandIn.calls``."""


# --- a "person" at the sheet -----------------------------------------------------------


class Sheet:
    """One tab of the stand-in, edited the way a person edits a sheet."""

    def __init__(self, server: SheetsStandIn, spreadsheet_id: str, title: str) -> None:
        self.server = server
        self.spreadsheet_id = spreadsheet_id
        self.title = title

    @property
    def _grid(self) -> Grid:
        return self.server.spreadsheets[self.spreadsheet_id][self.title]

    def rows(self) -> Grid:
        with self.server.lock:
            return [list(row) for row in self._grid]

    def _column(self, name: str) -> int:
        return self._grid[0].index(name)

    def _row_of(self, project: str) -> int:
        column = self._column("Project")
        for index, row in enumerate(self._grid[1:], start=1):
            if column < len(row) and row[column].strip() == project:
                return index
        raise KeyError(project)

    def cell(self, project: str, column: str) -> str:
        with self.server.lock:
            row = self._grid[self._row_of(project)]
            index = self._column(column)
            return row[index] if index < len(row) else ""

    def set(self, project: str, column: str, value: str) -> None:
        with self.server.lock:
            row = self._grid[self._row_of(project)]
            index = self._column(column)
            row.extend([""] * (index + 1 - len(row)))
            row[index] = value

    def move(self, project: str, to_row: int) -> None:
        """Drag a project's row to sheet row ``to_row`` (1 is the header)."""
        with self.server.lock:
            row = self._grid.pop(self._row_of(project))
            self._grid.insert(to_row - 1, row)

    def insert(self, at_row: int, cells: Iterable[str]) -> None:
        with self.server.lock:
            self._grid.insert(at_row - 1, list(cells))

    def delete(self, project: str) -> None:
        with self.server.lock:
            del self._grid[self._row_of(project)]

    def sort_by(self, column: str, *, reverse: bool = False) -> None:
        with self.server.lock:
            index = self._column(column)
            body = sorted(
                self._grid[1:],
                key=lambda row: row[index] if index < len(row) else "",
                reverse=reverse,
            )
            self._grid[1:] = body


@contextlib.contextmanager
def serving(monkeypatch: MonkeyPatch) -> Iterator[SheetsStandIn]:
    """A running stand-in, with this process's HTTPS kept on it (see proxy_environment)."""
    with SheetsStandIn() as standin:
        for name, value in standin.proxy_environment().items():
            monkeypatch.setenv(name, value)
        yield standin


# --- a service-account key pointing at the stand-in --------------------------------------


def write_service_account_key(
    path: Path,
    server: SheetsStandIn,
    *,
    email: str = "sidekick-test@sidekick-test.iam.gserviceaccount.com",
) -> Path:
    """A real service-account JSON key (fresh RSA key) whose token_uri is the stand-in."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_id = secrets.token_hex(20)
    server.trust(key_id, public_pem)
    info = {
        "type": "service_account",
        "project_id": "sidekick-test",
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": "100000000000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": server.token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path.write_text(json.dumps(info, indent=2))
    return path
