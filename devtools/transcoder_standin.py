"""A local HTTP server that speaks the Transcoder REST API (v1), for tests.

    with TranscoderStandIn(states=["PENDING", "RUNNING", "SUCCEEDED"]) as fake:
        client = transcoder_client(fake.url, AnonymousCredentials())

It serves ``POST /v1/projects/{p}/locations/{l}/jobs`` (create: answers the job with a new
``name``, ``state`` PENDING and the config echoed), ``GET /v1/projects/{p}/locations/{l}/jobs/{id}``
(each GET moves the job one step along ``states``, staying on the last; FAILED carries
``error: {code: 3, message: failure}``), ``GET …/jobs?filter=labels.K="V" AND …`` (list, the
AIP-160 label equalities only; anything else is refused as the real service refuses a bad filter)
and ``DELETE …/jobs/{id}`` (404 unless ``allowMissing``; the deleted names are in ``fake.deleted``).

It records every created job's JSON as the client sent it (``fake.created``) and every request
(``fake.requests``), checks a few rules the real service enforces on create, answers errors in
Google's JSON error shape, and can be told to fail the next requests with an HTTP status
(``fail_next``) or to carry out the next requests and then drop the connection without an answer
(``lose_next``: a create that went through, its answer lost). ``on_create(job_json)`` runs before
the create is answered (to make the output file from the segments, say); if it raises, the request
gets a 500 and the exception is raised again when the ``with`` block ends.

With ``finish_after`` (seconds) a job also ends by itself, as a real one does: GETs move it along
``states`` but never to the last one, which it takes ``finish_after`` seconds after its create.
When a job ends (it first reaches SUCCEEDED or FAILED, by a GET or by itself) and its config has a
``pubsubDestination``, the stand-in publishes what the service publishes
(https://cloud.google.com/transcoder/docs/how-to/create-pub-sub: ``{"job": {"name", "state",
"error"}}``, the error only when FAILED, as the message's data) to that topic on the Pub/Sub
emulator at ``pubsub_url``, through Pub/Sub's REST API. ``fake.finished_at[name]`` is when each job
ended (``time.time()``), ``fake.published`` each notice as (topic, message), and
``fake.publish_errors`` what could not be published.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JobJson = dict[str, Any]

_STATES = ("PROCESSING_STATE_UNSPECIFIED", "PENDING", "RUNNING", "SUCCEEDED", "FAILED")
_ENDED = ("SUCCEEDED", "FAILED")  # the states the service reports on Pub/Sub, once
# The google.rpc.Code name the API puts in ``error.status`` for an HTTP status.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_CREATE = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+)/jobs")
_GET = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+/jobs/[^/]+)")
_LABEL_EQUALS = re.compile(r'labels\.([a-z][a-z0-9_-]*)\s*=\s*"([^"]*)"')
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class TranscoderStandIn:
    def __init__(
        self,
        states: Sequence[str] = ("PENDING", "RUNNING", "SUCCEEDED"),
        failure: str = "The input file is shorter than 5 seconds.",
        on_create: Callable[[JobJson], None] | None = None,
        finish_after: float | None = None,
        pubsub_url: str | None = None,
    ) -> None:
        unknown = set(states) - set(_STATES)
        if not states or unknown:
            raise ValueError(f"states must be a non-empty list of {_STATES}, not {sorted(unknown)}")
        self.states = list(states)  # for jobs created from now on
        self.failure = failure
        self.on_create = on_create
        self.finish_after = finish_after  # for jobs created from now on
        self.pubsub_url = pubsub_url  # http://127.0.0.1:PORT, the Pub/Sub emulator notices go to
        self.created: list[JobJson] = []  # each created job's JSON, as the client sent it
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.jobs: dict[str, JobJson] = {}
        self.deleted: list[str] = []
        self.hook_errors: list[BaseException] = []
        self.finished_at: dict[str, float] = {}
        self.published: list[tuple[str, JobJson]] = []
        self.publish_errors: list[str] = []
        self._due: set[str] = set()  # jobs that end by themselves, not yet ended
        self._timers: list[threading.Timer] = []
        self._script: dict[str, list[str]] = {}
        self._failures: list[tuple[int, str]] = []
        self._losses: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits for the serving loop to look up.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-transcoder", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, status: int, message: str = "fake failure", times: int = 1) -> None:
        """Answer the next ``times`` requests with this HTTP error instead."""
        with self._lock:
            self._failures.extend([(status, message)] * times)

    def lose_next(self, method: str = "POST", times: int = 1) -> None:
        """Carry out the next ``times`` requests of ``method``, then close the connection instead
        of answering."""
        with self._lock:
            self._losses[method] = self._losses.get(method, 0) + times

    def _lose_answer(self, method: str) -> bool:
        with self._lock:
            left = self._losses.get(method, 0)
            self._losses[method] = max(left - 1, 0)
        return left > 0

    def __enter__(self) -> TranscoderStandIn:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        if self.hook_errors and exc_type is None:
            raise self.hook_errors[0]

    # Request handling, called from the server's threads.

    def _handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, JobJson]:
        with self._lock:
            self.requests.append((method, path))
            if self._failures:
                status, message = self._failures.pop(0)
                raise _Refused(status, message)
        numeric_enums = "json;enum-encoding=int" in query.get("$alt", [])
        if method == "POST" and (m := _CREATE.fullmatch(path)):
            return 200, self._render(self._create(m.group(1), body), numeric_enums)
        if method == "GET" and (m := _CREATE.fullmatch(path)):
            listed = self._list(m.group(1), query.get("filter", [""])[0])
            return 200, {"jobs": [self._render(job, numeric_enums) for job in listed]}
        if method == "GET" and (m := _GET.fullmatch(path)):
            return 200, self._render(self._advance(m.group(1)), numeric_enums)
        if method == "DELETE" and (m := _GET.fullmatch(path)):
            self._delete(m.group(1), query.get("allowMissing", ["false"])[0] == "true")
            return 200, {}
        raise _Refused(404, f"no method {method} {path}")

    def _create(self, parent: str, body: bytes) -> JobJson:
        try:
            job = json.loads(body)
        except ValueError as exc:
            raise _Refused(400, f"invalid JSON payload: {exc}") from exc
        _validate(job)
        name = f"{parent}/jobs/{uuid.uuid4()}"
        created = {
            **copy.deepcopy(job),
            "name": name,
            "state": "PENDING",
            "createTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "ttlAfterCompletionDays": job.get("ttlAfterCompletionDays") or 30,
            "mode": "PROCESSING_MODE_INTERACTIVE",
        }
        if self.on_create is not None:
            try:
                self.on_create(copy.deepcopy(created))
            except Exception as exc:
                self.hook_errors.append(exc)
                raise _Refused(500, f"on_create failed: {exc!r}") from exc
        timer = None
        with self._lock:
            self.created.append(job)
            self.jobs[name] = created
            self._script[name] = list(self.states)
            if self.finish_after is not None:
                self._due.add(name)
                timer = threading.Timer(self.finish_after, self._finish, args=(name,))
                timer.daemon = True
                self._timers.append(timer)
        if timer is not None:
            timer.start()
        return created

    def _list(self, parent: str, filter_: str) -> list[JobJson]:
        wanted: dict[str, str] = {}
        for term in filter(None, (t.strip() for t in filter_.split(" AND "))):
            if not (m := _LABEL_EQUALS.fullmatch(term)):
                raise _Refused(400, f'Invalid filter: {filter_!r} (this stand-in knows labels.KEY="VALUE" only)')
            wanted[m.group(1)] = m.group(2)
        with self._lock:
            return [
                copy.deepcopy(job)
                for name, job in self.jobs.items()
                if name.startswith(parent + "/") and all(job.get("labels", {}).get(k) == v for k, v in wanted.items())
            ]

    def _delete(self, name: str, allow_missing: bool) -> None:
        with self._lock:
            self._due.discard(name)  # a deleted job ends without a notice
            if self.jobs.pop(name, None) is not None:
                self.deleted.append(name)
            elif not allow_missing:
                raise _Refused(404, f"Job {name} not found.")

    def _advance(self, name: str) -> JobJson:
        with self._lock:
            if name not in self.jobs:
                raise _Refused(404, f"Job {name} not found.")
            script = self._script[name]
            if name in self._due:  # it ends by itself, at its time: until then never in its last state
                if len(script) > 2:
                    script.pop(0)
                state = script[0] if len(script) > 1 else self.jobs[name]["state"]
            else:
                state = script.pop(0) if len(script) > 1 else script[0]
            notice = self._enter(name, state)
            job = copy.deepcopy(self.jobs[name])
        self._publish(notice)
        return job

    def _finish(self, name: str) -> None:
        """A job that ends by itself, at its time: it takes the last of its states."""
        with self._lock:
            if name not in self._due or name not in self.jobs:
                return  # deleted meanwhile
            self._due.discard(name)
            script = self._script[name]
            del script[:-1]
            notice = self._enter(name, script[0])
        self._publish(notice)

    def _enter(self, name: str, state: str) -> tuple[str, JobJson] | None:
        """Put the job in ``state`` (the lock held); the notice to publish, if it ended just now."""
        job = self.jobs[name]
        job["state"] = state
        if state == "FAILED":
            job["error"] = {"code": 3, "message": self.failure}
        if state not in _ENDED or name in self.finished_at:
            return None
        self.finished_at[name] = time.time()
        topic = ((job.get("config") or {}).get("pubsubDestination") or {}).get("topic")
        if not topic:
            return None
        result = {"name": name, "state": state, **({"error": job["error"]} if state == "FAILED" else {})}
        return topic, {"job": result}

    def _publish(self, notice: tuple[str, JobJson] | None) -> None:
        """Publish a job's notice to its topic, as the service does (outside the lock)."""
        if notice is None:
            return
        topic, message = notice
        with self._lock:
            self.published.append((topic, message))
        if self.pubsub_url is None:
            self.publish_errors.append(f"{topic}: no Pub/Sub emulator to publish to")
            return
        data = base64.b64encode(json.dumps(message).encode()).decode()
        request = urllib.request.Request(
            f"{self.pubsub_url}/v1/{topic}:publish",
            json.dumps({"messages": [{"data": data}]}).encode(),
            {"Content-Type": "application/json"},
            method="POST",
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError) as exc:
            self.publish_errors.append(f"{topic}: {exc}")

    @staticmethod
    def _render(job: JobJson, numeric_enums: bool) -> JobJson:
        # The client asks for ``$alt=json;enum-encoding=int``: the service then sends enums as numbers.
        if numeric_enums:
            job = {**job, "state": _STATES.index(job["state"]), "mode": 1}
        return job


def _validate(job: JobJson) -> None:
    """A few of the rules the service checks when a job is created (all answer 400)."""
    config = job.get("config") or {}
    inputs = {i.get("key") for i in config.get("inputs", [])}
    problems = [f"input {i.get('key')!r} needs a gs:// uri" for i in config.get("inputs", []) if not _gs(i.get("uri"))]
    problems += [
        f"editList atom {atom.get('key')!r} names unknown input {key!r}"
        for atom in config.get("editList", [])
        for key in atom.get("inputs", [])
        if key not in inputs
    ]
    streams = {s.get("key") for s in config.get("elementaryStreams", [])}
    problems += [
        f"muxStream {mux.get('key')!r} names unknown elementary stream {key!r}"
        for mux in config.get("muxStreams", [])
        for key in mux.get("elementaryStreams", [])
        if key not in streams
    ]
    output = (config.get("output") or {}).get("uri", "")
    if not _gs(output) or not output.endswith("/") or output.count("/") < 4:
        problems.append(f"output.uri {output!r} must be a folder inside a bucket, ending with '/'")
    for stream in config.get("elementaryStreams", []):
        h264 = (stream.get("videoStream") or {}).get("h264")
        if h264 is not None and not (h264.get("frameRate") and h264.get("bitrateBps")):
            problems.append(f"elementary stream {stream.get('key')!r} needs frameRate and bitrateBps")
        audio = stream.get("audioStream")
        if audio is not None and not audio.get("bitrateBps"):
            problems.append(f"elementary stream {stream.get('key')!r} needs bitrateBps")
    if not 0 <= job.get("ttlAfterCompletionDays", 0) <= 90:
        problems.append("ttlAfterCompletionDays must be between 1 and 90")
    for key, value in (job.get("labels") or {}).items():
        if not _LABEL.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            problems.append(f"label {key}={value!r} breaks the label rules")
    if problems:
        raise _Refused(400, "; ".join(problems))


def _gs(uri: object) -> bool:
    return isinstance(uri, str) and uri.startswith("gs://") and len(uri) > len("gs://")


def _handler(fake: TranscoderStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's session expects
        disable_nagle_algorithm = True  # headers and body go out as two writes; don't wait on the ACK

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                status, payload = fake._handle(self.command, url.path, parse_qs(url.query), body)
            except _Refused as exc:
                name = _STATUS_NAMES.get(exc.status, HTTPStatus(exc.status).phrase.upper().replace(" ", "_"))
                status, payload = exc.status, {"error": {"code": exc.status, "message": str(exc), "status": name}}
            if fake._lose_answer(self.command):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded in fake.requests

    return Handler
