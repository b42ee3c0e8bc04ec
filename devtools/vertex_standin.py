"""A stand-in for Veo on Vertex AI (the real one needs a cloud project): a local HTTP server that
speaks the two REST calls google-genai makes with ``vertexai=True`` and records what it received.

    POST /v1beta1/projects/{p}/locations/{l}/publishers/google/models/{model}:predictLongRunning
         {"instances": [{"prompt", "image"?: {"gcsUri", "mimeType"}}], "parameters": {…}, "labels"?}
      →  {"name": "projects/{p}/locations/{l}/publishers/google/models/{model}/operations/{uuid}"}

    POST /v1beta1/{the same model}:fetchPredictOperation      {"operationName": name}
      →  {"name"}                                  while running (``done`` false is left out)
      →  {"name", "done": true, "response": {"@type", "raiMediaFilteredCount",
              "videos": [{"gcsUri": "{storageUri}{id}/sample_0.mp4", "mimeType": "video/mp4"}]}}
      →  {"name", "done": true, "response": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": […]}}
      →  {"name", "done": true, "error": {"code": 3, "message": …}}

Each generation's fate is scripted before it starts (``script``; by default it finishes after one
"still running" poll); HTTP failures are queued per call (``fail_next``). It refuses what Vertex
refuses with 400 INVALID_ARGUMENT — durations the model does not take, malformed labels — so a
test also catches a request Veo would reject. ``on_generate(request, output_uri)`` runs when a
generation succeeds, before the poll that reports it: make the video there.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREDICT = "predictLongRunning"
FETCH = "fetchPredictOperation"
RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
_PATH = re.compile(
    r"^/v1beta1/(?P<model>projects/[^/]+/locations/[^/]+/publishers/google/models/(?P<id>[^/:]+))"
    r":(?P<call>predictLongRunning|fetchPredictOperation)$"
)
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
_STATUS |= {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

OnGenerate = Callable[[dict[str, Any], str], None]


@dataclass(frozen=True)
class Outcome:
    """How one generation ends, after ``pending`` polls that answer "still running"."""

    pending: int = 1
    error: dict[str, Any] | None = None
    blocked: tuple[str, ...] | None = None  # raiMediaFilteredReasons: no video

    @classmethod
    def video(cls, pending: int = 1) -> Outcome:
        return cls(pending)

    @classmethod
    def failed(cls, code: int = 3, message: str = "the request is invalid", pending: int = 0) -> Outcome:
        return cls(pending, error={"code": code, "message": message})

    @classmethod
    def filtered(cls, *reasons: str, pending: int = 0) -> Outcome:
        return cls(pending, blocked=reasons)


@dataclass(frozen=True)
class HttpFailure:
    """One HTTP error answer; ``stall`` seconds pass first (longer than a client's timeout, say)."""

    status: int
    message: str = "failed"
    retry_after: str | None = None  # the Retry-After header
    retry_delay: str | None = None  # a google.rpc.RetryInfo detail, e.g. "30s"
    stall: float = 0.0


@dataclass(frozen=True)
class Recorded:
    call: str  # PREDICT or FETCH
    path: str
    body: dict[str, Any]
    authorization: str | None
    status: int


@dataclass
class Generation:
    name: str
    request: dict[str, Any]
    outcome: Outcome
    polls: int = 0
    result: dict[str, Any] | None = None  # the finished operation, once done
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def storage_uri(self) -> str | None:
        uri: str | None = self.request.get("parameters", {}).get("storageUri")
        return uri


@dataclass
class _State:
    requests: list[Recorded] = field(default_factory=list)
    generations: dict[str, Generation] = field(default_factory=dict)
    outcomes: deque[Outcome] = field(default_factory=deque)
    failures: dict[str, deque[HttpFailure]] = field(default_factory=lambda: {PREDICT: deque(), FETCH: deque()})


class VertexStandIn:
    """``with VertexStandIn() as vertex:`` serves on ``vertex.url`` (127.0.0.1, a free port)."""

    def __init__(self, on_generate: OnGenerate | None = None) -> None:
        self.on_generate = on_generate
        self._state = _State()
        self._lock = threading.Lock()
        self._video_ids = itertools.count(4_567_890_123_456_789_012)  # Veo's folder names are long numbers
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                match = _PATH.match(self.path)
                if match is None:
                    return self._answer(404, _error(404, f"no such method: {self.path}"))
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    return self._answer(400, _error(400, "the body is not JSON"))
                try:
                    status, payload, headers = outer._serve(match, body, self.headers.get("Authorization"))
                except Exception as exc:  # a failing on_generate: say so rather than drop the connection
                    status, payload, headers = 500, _error(500, f"the fake failed: {exc!r}"), {}
                self._answer(status, payload, headers)

            def _answer(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up: expected
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval: shutdown() waits for the loop to notice, 0.5 s by default.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    # -- scripting -------------------------------------------------------------------------------

    def script(self, *outcomes: Outcome) -> None:
        """How the next generations end, in the order they start."""
        with self._lock:
            self._state.outcomes.extend(outcomes)

    def fail_next(self, call: str, *failures: HttpFailure) -> None:
        """Answer the next ``call`` requests (PREDICT or FETCH) with these HTTP errors, in order."""
        with self._lock:
            self._state.failures[call].extend(failures)

    # -- what happened ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._state.requests)

    def bodies(self, call: str) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.call == call]

    @property
    def generations(self) -> list[Generation]:
        """Every generation started, in order."""
        with self._lock:
            return list(self._state.generations.values())

    # -- serving ---------------------------------------------------------------------------------

    def _serve(
        self, match: re.Match[str], body: dict[str, Any], authorization: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        call = match["call"]
        with self._lock:
            failure = self._state.failures[call].popleft() if self._state.failures[call] else None
        headers: dict[str, str] = {}
        if failure is not None:
            time.sleep(failure.stall)
            status, payload = failure.status, _error(failure.status, failure.message)
            if failure.retry_after is not None:
                headers["Retry-After"] = failure.retry_after
            if failure.retry_delay is not None:
                payload["error"]["details"] = [
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": failure.retry_delay}
                ]
        elif not (authorization or "").startswith("Bearer "):
            status, payload = 401, _error(401, "the request has no bearer token")
        elif call == PREDICT:
            status, payload = self._predict(match["model"], match["id"], body)
        else:
            status, payload = self._fetch(match["model"], body)
        with self._lock:
            self._state.requests.append(Recorded(call, match.string, body, authorization, status))
        return status, payload, headers

    def _predict(self, model: str, model_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not model_id.startswith("veo-"):
            return 404, _error(404, f"Publisher Model `{model}` not found.")
        problem = _invalid(model_id, body)
        if problem:
            return 400, _error(400, problem)
        name = f"{model}/operations/{uuid.uuid4()}"
        with self._lock:
            outcome = self._state.outcomes.popleft() if self._state.outcomes else Outcome.video()
            self._state.generations[name] = Generation(name, body, outcome)
        return 200, {"name": name}

    def _fetch(self, model: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body.get("operationName", "")
        with self._lock:
            generation = self._state.generations.get(name)
        if generation is None or not name.startswith(model + "/operations/"):
            return 404, _error(404, f"Operation {name!r} not found.")
        # One poll of an operation at a time, so on_generate runs once, before "done" is reported.
        with generation.lock:
            if generation.result is None:
                if generation.polls < generation.outcome.pending:
                    generation.polls += 1
                    return 200, {"name": name}
                generation.result = self._finish(generation)
            return 200, generation.result

    def _finish(self, generation: Generation) -> dict[str, Any]:
        outcome = generation.outcome
        if outcome.error is not None:
            return {"name": generation.name, "done": True, "error": outcome.error}
        response: dict[str, Any] = {"@type": RESPONSE_TYPE, "raiMediaFilteredCount": 0}
        if outcome.blocked is not None:
            response |= {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": list(outcome.blocked)}
        elif generation.storage_uri is None:  # Veo answers with the bytes inline
            inline = base64.b64encode(b"not a video").decode()
            response["videos"] = [{"bytesBase64Encoded": inline, "mimeType": "video/mp4"}]
        else:
            folder = generation.storage_uri.rstrip("/") + "/"
            uri = f"{folder}{next(self._video_ids)}/sample_0.mp4"
            if self.on_generate is not None:
                self.on_generate(generation.request, uri)
            response["videos"] = [{"gcsUri": uri, "mimeType": "video/mp4"}]
        return {"name": generation.name, "done": True, "response": response}

    def __enter__(self) -> VertexStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _invalid(model_id: str, body: dict[str, Any]) -> str | None:
    """What Vertex would refuse in a predictLongRunning body (a subset), or None."""
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        return "instances must hold exactly one instance"
    instance, parameters = instances[0], body.get("parameters") or {}
    if not instance.get("prompt") and not instance.get("image"):
        return "a prompt or an image is required"
    image = instance.get("image")
    if image is not None and (
        not str(image.get("gcsUri", "")).startswith("gs://") or image.get("mimeType") not in ("image/png", "image/jpeg")
    ):
        return f"image must be a gs:// URI with an image mimeType: {image}"
    durations = (5, 6, 7, 8) if model_id.startswith("veo-2") else (4, 6, 8)
    if parameters.get("durationSeconds", 8) not in durations:
        return f"durationSeconds {parameters.get('durationSeconds')} is not supported by {model_id}"
    if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        return f"aspectRatio {parameters.get('aspectRatio')} is not supported"
    if not 1 <= parameters.get("sampleCount", 1) <= 4:
        return "sampleCount must be between 1 and 4"
    if "storageUri" in parameters and not str(parameters["storageUri"]).startswith("gs://"):
        return "storageUri must be a gs:// URI"
    labels = body.get("labels") or {}
    if len(labels) > 64 or any(not _LABEL_KEY.match(k) or not _LABEL_VALUE.match(str(v)) for k, v in labels.items()):
        return f"invalid labels: {labels}"
    return None


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
