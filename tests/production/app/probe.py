"""The container's health check: /health must answer 200; prints what it got."""

import sys
import urllib.error
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:8000/health", timeout=1) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as exc:
    print("health answered", exc.code, exc.read().decode())
    sys.exit(1)
except OSError as exc:
    print("health unreachable:", exc)
    sys.exit(1)
