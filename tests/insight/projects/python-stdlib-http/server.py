"""A plain web server from the standard library: no framework, its port a constant."""

from http.server import BaseHTTPRequestHandler, HTTPServer

PORT = 8000


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from http.server\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    HTTPServer(("", PORT), Hello).serve_forever()
