"""A stand-in for Inngest's Event API (Inngest Cloud cannot run here): it speaks the wire
protocol the SDK's ``send``/``send_sync`` use — ``POST /e/{eventKey}`` with a JSON list of
events, answered by ``{"ids": [...], "status": 200}`` — and records what it received."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import ThreadingHTTPServer
from typing import Any

from tests.servers import JsonHandler


class FakeInngestEventApi:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.fail_status: int | None = None  # answer every send with this status instead
        self._lock = threading.Lock()
        outer = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.startswith("/e/"):
                    return self.answer(404, {"error": "not found"})
                if outer.fail_status is not None:
                    return self.answer(outer.fail_status, {"error": "event API unavailable"})
                events = json.loads(body)
                events = events if isinstance(events, list) else [events]
                with outer._lock:
                    outer.events.extend(events)
                    outer.keys.append(self.path.removeprefix("/e/"))
                self.answer(200, {"ids": [e.get("id") or uuid.uuid4().hex for e in events], "status": 200})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("name") == name]

    def __enter__(self) -> FakeInngestEventApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
