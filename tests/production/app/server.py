"""Serves /version (the VERSION file) and /health (200 while health.txt says ok)."""

import http.server
import pathlib
import signal
import sys

HERE = pathlib.Path(__file__).parent


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/version":
            self._answer(200, (HERE / "VERSION").read_text().strip())
        elif self.path == "/health":
            state = (HERE / "health.txt").read_text().strip()
            self._answer(200 if state == "ok" else 500, state)
        else:
            self._answer(404, "not found")

    def _answer(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        print("request", format % args, flush=True)


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("serving version", (HERE / "VERSION").read_text().strip(), flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
