"""A stand-in for the Inngest dev server (which cannot be installed here): an HTTP server that
takes events where the SDK sends them in dev mode and runs the app's functions over the SDK's own
HTTP protocol, as Inngest's executor does. The product code cannot tell it from Inngest.

What it speaks (the SDK's side is ``inngest._internal.comm_lib``):
- Events (the Event API, what ``send``/``send_sync`` call): ``POST /e/{eventKey}`` with one event or
  a list → ``{"ids": [...], "status": 200}``; ``events`` and ``keys`` record what came. An event
  ``id`` seen before is dropped (Inngest deduplicates on it for 24 h). With no app synced it is
  just the Event API; ``fail_status`` makes it answer every send with that status instead.
- Sync: ``sync(app_url)`` GETs the endpoint's introspection, then PUTs it; the SDK answers by
  POSTing its function configs to ``/fn/register`` here (triggers, step URL, retries, cancel,
  idempotency, and one ``<fn>-failure`` function per ``on_failure``).
- Runs: a matching event starts a run (once per idempotency key); each call POSTs the run's
  context (attempt, max_attempts, stack), its event and every memoized step to the step URL.
  206 + ops: ``StepRun`` memoized; ``Sleep`` waited (times ``sleep_factor``) then memoized;
  ``StepPlanned`` each targeted by ``stepId`` in turn; ``StepError`` retried with exponential
  backoff; ``StepFailed`` memoized as the step's error. 200 ends the run; an error status is
  retried (``retry-after`` honoured) unless ``x-inngest-no-retry: true`` or the attempts are spent.
- A failed run sends ``inngest/function.failed`` (``{function_id, run_id, error, event}``), which
  triggers the ``on_failure`` function; events sent from steps (``video/stitch.requested``) go
  through the same path; a ``cancel`` event matching its ``if`` expression ends the run before
  its next call (a call in flight finishes, as with Inngest).
Not spoken: concurrency, throttle, rate limits, debounce, batching, ``waitForEvent``, ``invoke``.
Expressions: ``<path|literal> == <path|literal>`` only; anything else raises, loudly.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from devtools.inngest_executor import run_request
from devtools.servers import JsonHandler

FUNCTION_FAILED = "inngest/function.failed"
_HEADERS = {"X-Inngest-Server-Kind": "dev", "Content-Type": "application/json"}
_EQUALS = re.compile(r"^\s*(?P<left>\S+)\s*==\s*(?P<right>\S+)\s*$")


@dataclass
class Run:
    run_id: str
    fn_id: str
    event: dict[str, Any]
    status: str = "Running"  # Running, Completed, Failed, Cancelled
    output: Any = None
    error: dict[str, Any] | None = None
    ops: list[str] = field(default_factory=list)  # "<op> <displayName>", in the order answered
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class InngestDevServer:
    """``with InngestDevServer(sleep_factor=0.05) as inngest:`` serves on ``inngest.url``."""

    def __init__(
        self,
        sleep_factor: float = 1.0,
        retry_base_seconds: float = 10.0,
        call_timeout_seconds: float = 1800.0,
        port: int = 0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` carries the calls to the app (default: real HTTP); an in-process WSGI
        transport lets a test drive a Flask app with no server of its own."""
        self.sleep_factor = sleep_factor
        self.retry_base_seconds = retry_base_seconds
        self.functions: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.keys: list[str] = []  # the event key of each send
        self.fail_status: int | None = None
        self.runs: list[Run] = []
        self._seen_ids: set[str] = set()
        self._idempotency: set[tuple[str, str]] = set()
        self._registered = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        # Idle connections are dropped after 1 s, well before a server closes them (Node's, in front
        # of the Functions emulator, after 5 s): a call sent on one as the server closes it would fail.
        limits = httpx.Limits(keepalive_expiry=1.0)
        self._http = httpx.Client(timeout=call_timeout_seconds, transport=transport, limits=limits)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._workers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- sync ------------------------------------------------------------------------------------

    def sync(self, app_url: str, timeout: float = 120.0) -> dict[str, dict[str, Any]]:
        """Find the app's functions as the dev server does: introspect, then ask it to register."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = self._http.get(app_url, headers=_HEADERS, timeout=60)
                if answer.status_code == 200 and answer.json().get("function_count"):
                    break
                problem = f"{answer.status_code} {answer.text[:300]}"
            except httpx.HTTPError as exc:
                problem = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"no Inngest app at {app_url}: {problem}")
            time.sleep(0.5)
        self._registered.clear()
        answer = self._http.put(app_url, headers=_HEADERS, timeout=60)
        if answer.status_code != 200 or not self._registered.wait(5):
            raise RuntimeError(f"syncing {app_url} failed: {answer.status_code} {answer.text[:300]}")
        with self._lock:
            return dict(self.functions)

    def _register(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.functions = {fn["id"]: fn for fn in body.get("functions", [])}
        self._registered.set()
        return {"ok": True, "modified": True}

    # -- events ----------------------------------------------------------------------------------

    def send(self, events: list[dict[str, Any]]) -> list[str]:
        """Take events as the Event API does; start and cancel runs accordingly."""
        ids = []
        for raw in events:
            event = {"data": {}, "id": "", "ts": int(time.time() * 1000), **raw}
            ids.append(event["id"] or uuid.uuid4().hex)
            with self._lock:
                if event["id"] and event["id"] in self._seen_ids:
                    continue  # a repeat of an event already taken
                if event["id"]:
                    self._seen_ids.add(event["id"])
                self.events.append(event)
                functions = list(self.functions.values())
                running = [run for run in self.runs if run.status == "Running"]
            self._cancel_matching(event, running)
            for fn in functions:
                if any(_triggered(trigger, event) for trigger in fn.get("triggers", [])):
                    self._start(fn, event)
        return ids

    def named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("name") == name]

    def _cancel_matching(self, event: dict[str, Any], running: list[Run]) -> None:
        for run in running:
            for cancel in self.functions.get(run.fn_id, {}).get("cancel") or []:
                if cancel["event"] == event["name"] and _true(cancel.get("if"), event=run.event, async_=event):
                    run.cancelled.set()

    def _start(self, fn: dict[str, Any], event: dict[str, Any], replay: bool = False) -> Run | None:
        if fn.get("idempotency") and not replay:
            key = (fn["id"], json.dumps(_value(fn["idempotency"], {"event": event})))
            with self._lock:
                if key in self._idempotency:
                    return None
                self._idempotency.add(key)
        run = Run(run_id=uuid.uuid4().hex.upper()[:26], fn_id=fn["id"], event=event)
        worker = threading.Thread(target=self._drive, args=(fn, run), name=f"inngest-run-{run.run_id}", daemon=True)
        with self._lock:
            self.runs.append(run)
            self._workers.append(worker)
        worker.start()
        return run

    # -- runs ------------------------------------------------------------------------------------

    def replay(self, run: Run) -> Run:
        """Run ``run``'s function again on its event, from a fresh step history: the dashboard's
        Replay of a failed run (no idempotency check: it is an operator's explicit re-run)."""
        with self._lock:
            fn = self.functions[run.fn_id]
        again = self._start(fn, run.event, replay=True)
        assert again is not None
        return again

    def runs_of(self, fn_id: str, job_id: str | None = None) -> list[Run]:
        """Runs of ``<app>-<fn>``; with ``job_id``, those whose event (or failed run's event) names it."""
        with self._lock:
            runs = [r for r in self.runs if r.fn_id == fn_id]
        if job_id is None:
            return runs
        return [r for r in runs if job_id in (_job_of(r.event), _job_of(r.event.get("data", {}).get("event", {})))]

    def wait_idle(self, timeout: float) -> None:
        """Wait until no run is going (a run that ends may start others: wait for those too)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                running = [r for r in self.runs if not r.done.is_set()]
            if not running:
                return
            if not running[0].done.wait(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"runs still going after {timeout}s: {[r.fn_id for r in running]}")

    def _drive(self, fn: dict[str, Any], run: Run) -> None:
        try:
            self._play(fn, run)
        except Exception as exc:  # the executor itself failed: say so on the run, loudly
            run.status, run.error = "Failed", {"name": type(exc).__name__, "message": f"executor: {exc}"}
        try:
            # Before the run counts as done, so wait_idle also waits for the failure handler's run.
            if run.status == "Failed" and not self._stopping.is_set():
                data = {"function_id": run.fn_id, "run_id": run.run_id, "error": run.error, "event": run.event}
                self.send([{"name": FUNCTION_FAILED, "data": data}])
        finally:
            run.done.set()

    def _play(self, fn: dict[str, Any], run: Run) -> None:
        step = fn["steps"]["step"]
        max_attempts = int((step.get("retries") or {}).get("attempts", 3)) + 1
        steps: dict[str, Any] = {}
        stack: list[str] = []
        planned: list[str] = []
        attempt = 0
        while True:
            if run.cancelled.is_set() or self._stopping.is_set():
                run.status = "Cancelled"
                return
            target = planned[0] if planned else "step"
            body = run_request(run.event, steps, attempt, run.run_id, max_attempts, stack)
            try:
                answer = self._http.post(_with_step(step["runtime"]["url"], target), json=body, headers=_HEADERS)
            except httpx.TransportError as exc:  # the app is unreachable: a failed attempt, like a 5xx
                answer = httpx.Response(502, json={"name": type(exc).__name__, "message": str(exc)})
            if answer.status_code == 200:
                run.status, run.output = "Completed", _json(answer)
                return
            if answer.status_code != 206:
                error = _error_of(_json(answer))
                no_retry = answer.headers.get("x-inngest-no-retry") == "true"
                if no_retry or attempt + 1 >= max_attempts:
                    run.status, run.error = "Failed", error
                    return
                attempt += 1
                self._wait(self._backoff(attempt, answer.headers.get("retry-after")))
                continue
            retried = False
            for op in _json(answer):
                run.ops.append(f"{op['op']} {op.get('displayName') or op.get('name') or ''}".strip())
                if op["id"] in planned:
                    planned.remove(op["id"])
                if op["op"] == "StepRun":
                    steps[op["id"]] = {"data": op.get("data")}
                elif op["op"] == "Sleep":
                    self._wait(_seconds_until(op["name"]))
                    steps[op["id"]] = None
                elif op["op"] == "StepFailed":
                    steps[op["id"]] = {"error": op.get("error")}
                elif op["op"] == "StepPlanned":
                    planned.append(op["id"])
                    continue
                elif op["op"] == "StepError":
                    if answer.headers.get("x-inngest-no-retry") == "true" or attempt + 1 >= max_attempts:
                        steps[op["id"]] = {"error": op.get("error")}  # spent: the function sees StepError
                    else:
                        retried = True
                        continue
                else:
                    raise RuntimeError(f"op {op['op']} is not supported by this stand-in")
                stack.append(op["id"])
            if retried:
                attempt += 1
                self._wait(self._backoff(attempt, answer.headers.get("retry-after")))
            else:
                attempt = 0  # attempts count per step

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            with contextlib.suppress(ValueError):
                return max(0.0, float(retry_after))
            with contextlib.suppress(ValueError):
                return _seconds_until(retry_after)
        return self.retry_base_seconds * 2 ** (attempt - 1)

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(max(0.0, seconds) * self.sleep_factor)

    # -- lifetime --------------------------------------------------------------------------------

    def __enter__(self) -> InngestDevServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=30)  # a call in flight ends with its HTTP timeout at worst
        self._http.close()


def _handler(server: InngestDevServer) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError:
                return self._answer(400, {"error": "the body is not JSON"})
            if path.startswith("/e/"):
                if server.fail_status is not None:
                    return self._answer(server.fail_status, {"error": "event API unavailable"})
                events = body if isinstance(body, list) else [body]
                with server._lock:
                    server.keys.append(path.removeprefix("/e/"))
                return self._answer(200, {"ids": server.send(events), "status": 200})
            if path == "/fn/register":
                return self._answer(200, server._register(body))
            self._answer(404, {"error": f"no route {path}"})

        def do_GET(self) -> None:
            self._answer(200, {"status": "ok"})  # the dev server's health answer

        def _answer(self, status: int, payload: Any) -> None:
            self.answer(status, payload, _HEADERS)

    return Handler


def _triggered(trigger: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(trigger.get("event") == event.get("name") and _true(trigger.get("expression"), event=event))


def _true(expression: str | None, event: dict[str, Any], async_: dict[str, Any] | None = None) -> bool:
    if not expression:
        return True
    match = _EQUALS.match(expression)
    if match is None:
        raise ValueError(f"expression not supported by this stand-in: {expression!r}")
    scope = {"event": event, "async": async_ or {}}
    return bool(_value(match["left"], scope) == _value(match["right"], scope))


def _value(term: str, scope: dict[str, Any]) -> Any:
    if term[:1] in "'\"":
        return term[1:-1]
    if re.fullmatch(r"-?\d+(\.\d+)?", term):
        return json.loads(term)
    value: Any = scope
    for part in term.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _with_step(url: str, step: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | {"stepId": step}
    return urlunsplit(parts._replace(query=urlencode(query)))


def _seconds_until(iso: str) -> float:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - datetime.now().astimezone()).total_seconds()


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return {"message": answer.text}


def _error_of(body: Any) -> dict[str, Any]:
    error = body.get("error", body) if isinstance(body, dict) else {"message": str(body)}
    return error if isinstance(error, dict) else {"message": str(error)}


def _job_of(event: Any) -> str | None:
    return event.get("data", {}).get("jobId") if isinstance(event, dict) else None
