"""``longform serve``: the web client on 127.0.0.1, against the embedded pipeline.

The page talks to this server the way it talks to Firebase, so one page serves both:

- the callables at the Functions emulator's path, ``POST /{project}/{region}/{function}``, speaking
  the callable protocol: ``{"data": …}`` in, ``{"result": …}`` or
  ``{"error": {"status", "message", "details"}}`` out, with Firebase's HTTP status codes;
- ``GET /__/longform/jobs/{jobId}/events``: server-sent events, the local twin of ``onSnapshot``:
  the job now, then every write to it, until it is final;
- ``GET /__/longform/jobs``: the user's recent jobs (My jobs);
- ``GET /__/longform/files/{key}``: segments and final videos from the blob folder, with Range
  requests (a ``<video>`` needs them to seek and to learn its duration);
- ``GET /__/longform/config.json``: tells the page it is in local mode;
- everything else: the static page in ``web/``.

There is one user, ``bootstrap.LOCAL_USER``. Jobs run in background threads of this process; a job
interrupted by stopping the server continues with ``longform resume JOB_ID``.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, Response, request, send_file, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.serving import make_server

from . import bootstrap
from .adapters.local_blob_store import LocalBlobStore
from .config import Settings
from .errors import InvalidRequest, JobNotFound, PermanentError
from .job import FINAL_STATUSES, Job, SegmentStatus, Status, idempotent_job_id, is_job_id, new_job_id
from .ports import BlobStore, VideoModel
from .request import validate_request

PROJECT = "demo-longform"  # .firebaserc's project: the same paths as under the Functions emulator
REGION = "us-central1"
API = "/__/longform"
WEB_DIR = Path(__file__).resolve().parents[2] / "web"  # the repository's page (an editable install)
DEFAULT_PORT = 8765
KEEPALIVE_SECONDS = 15.0  # a comment line on an idle event stream, so proxies keep it open
RECENT_JOBS = 20
_FINAL = {status.value for status in FINAL_STATUSES}

# Firebase's callable error statuses and the HTTP codes it sends with them.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}


class CallableError(Exception):
    """An error a callable returns to the page, as Firebase's ``HttpsError`` would."""

    def __init__(self, status: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class JobFeed:
    """Job writes fanned out to the event streams watching them, one queue per stream.

    ``watch`` subscribes and reads the job under the same lock ``publish`` takes, so a stream starts
    from a snapshot and then hears every later write (at worst the snapshot's own write once more),
    never an older one. The store serializes writes with their notices, so writes arrive in order.
    """

    def __init__(self, view: Callable[[Job], dict[str, Any]]) -> None:
        self._view = view
        self._lock = threading.Lock()
        self._watchers: dict[str, set[queue.Queue[dict[str, Any]]]] = defaultdict(set)

    def publish(self, job: Job) -> None:
        with self._lock:
            watchers = self._watchers.get(job.job_id)
            if watchers:
                view = self._view(job)
                for watcher in watchers:
                    watcher.put(view)

    @contextmanager
    def watch(
        self, job_id: str, read: Callable[[], Job]
    ) -> Iterator[tuple[dict[str, Any], queue.Queue[dict[str, Any]]]]:
        updates: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._lock:
            snapshot = self._view(read())
            self._watchers[job_id].add(updates)
        try:
            yield snapshot, updates
        finally:
            with self._lock:
                self._watchers[job_id].discard(updates)
                if not self._watchers[job_id]:
                    del self._watchers[job_id]


class LocalService:
    """What the callables and the job endpoints do, over the embedded pipeline."""

    def __init__(self, settings: Settings, model: Callable[[BlobStore], VideoModel] | None = None) -> None:
        self.files = LocalBlobStore(settings.blob_dir)  # the folder the pipeline's blob store writes
        self.feed = JobFeed(self.view)
        self.local = bootstrap.local(settings, model=model, on_update=self.feed.publish)
        self.jobs = self.local.pipeline.jobs

    def trigger(self, data: Any) -> dict[str, Any]:
        """Validate, store the job as queued, start it; the same ``requestId`` gets the same job."""
        try:
            video_request = validate_request(data)
        except InvalidRequest as exc:
            problems = [{"field": field, "rule": rule} for field, rule in exc.problems]
            raise CallableError(
                "INVALID_ARGUMENT", str(exc), {"field": exc.field, "rule": exc.rule, "problems": problems}
            ) from None
        user = bootstrap.LOCAL_USER
        job_id = idempotent_job_id(user, video_request.request_id) if video_request.request_id else new_job_id()
        job, created = self.jobs.submit(Job.new(video_request, user, job_id))
        if created:
            threading.Thread(
                target=self.local.runner.run, args=(job.job_id,), name=f"job-{job_id}", daemon=True
            ).start()
        return {"jobId": job.job_id, "status": job.status.value}

    def cancel(self, data: Any) -> dict[str, Any]:
        """Mark the job cancelled: the run stops at its next write, before another segment starts."""
        job_id = data.get("jobId") if isinstance(data, dict) else None
        if not is_job_id(job_id):
            raise CallableError(
                "INVALID_ARGUMENT", "jobId: must be a job id", {"field": "jobId", "rule": "must be a job id"}
            )
        job = self.job(job_id)
        if not job.status.is_final:
            job = self.jobs.update(job_id, _cancel)
        return {"jobId": job_id, "status": job.status.value}

    def job(self, job_id: str) -> Job:
        try:
            job = self.jobs.get(job_id)
        except JobNotFound:
            raise CallableError("NOT_FOUND", f"no job {job_id}") from None
        if job.user_id != bootstrap.LOCAL_USER:
            raise CallableError("PERMISSION_DENIED", "only the job's owner can see it")
        return job

    def recent(self) -> list[dict[str, Any]]:
        return [self.view(job) for job in self.jobs.list(bootstrap.LOCAL_USER, RECENT_JOBS)]

    def view(self, job: Job) -> dict[str, Any]:
        """The job as the page reads it: the stored JSON, plus http URLs for what can be played."""
        data = job.to_json()
        for segment, out in zip(job.segments, data["segments"], strict=True):
            done = segment.status is SegmentStatus.COMPLETED
            out["url"] = self.file_url(segment.uri) if done and segment.uri else None
        if job.status is Status.COMPLETED and job.video_uri:
            data["videoUrl"] = self.file_url(job.video_uri)
        return data

    def file_url(self, uri: str) -> str | None:
        """``file:///…/blobs/jobs/x/final/video.mp4`` → ``/__/longform/files/jobs/x/final/video.mp4``."""
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme != "file":
            return None
        path = Path(urllib.request.url2pathname(parsed.path))
        if not path.is_relative_to(self.files.root):
            return None
        return f"{API}/files/{urllib.parse.quote(path.relative_to(self.files.root).as_posix())}"


def create_app(service: LocalService, web_dir: Path = WEB_DIR) -> Flask:
    app = Flask(__name__, static_folder=None)
    callables: dict[str, Callable[[Any], dict[str, Any]]] = {
        "trigger_long_form_video_job": service.trigger,
        "cancel_long_form_video_job": service.cancel,
    }

    @app.post("/<project>/<region>/<name>")
    def call(project: str, region: str, name: str) -> tuple[dict[str, Any], int]:
        try:
            if (project, region) != (PROJECT, REGION) or name not in callables:
                raise CallableError("NOT_FOUND", f"no function {project}/{region}/{name}")
            body = request.get_json(silent=True)
            if not isinstance(body, dict) or "data" not in body:
                raise CallableError("INVALID_ARGUMENT", 'the body must be a JSON object {"data": …}')
            return {"result": callables[name](body["data"])}, 200
        except CallableError as exc:
            return exc.body(), HTTP_STATUS[exc.status]

    @app.get(f"{API}/config.json")
    def config() -> dict[str, Any]:
        return {"mode": "local", "project": PROJECT, "region": REGION, "user": bootstrap.LOCAL_USER}

    @app.get(f"{API}/jobs")
    def jobs() -> dict[str, Any]:
        return {"jobs": service.recent()}

    @app.get(f"{API}/jobs/<job_id>/events")
    def events(job_id: str) -> Response | tuple[dict[str, Any], int]:
        try:
            service.job(job_id)
        except CallableError as exc:
            return exc.body(), HTTP_STATUS[exc.status]
        return Response(
            _event_stream(service, job_id),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(f"{API}/files/<path:key>")
    def files(key: str) -> Response:
        try:
            path = service.files.path(key)
        except PermanentError:
            raise NotFound() from None
        if not path.is_file():
            raise NotFound()
        # conditional=True: werkzeug answers Range requests with 206 and the asked-for bytes.
        return send_file(path, conditional=True, max_age=0)

    @app.get("/")
    @app.get("/<path:path>")
    def page(path: str = "index.html") -> Response:
        response = send_from_directory(web_dir, path, max_age=0)
        response.headers["Cache-Control"] = "no-cache"
        return response

    return app


def _event_stream(service: LocalService, job_id: str) -> Iterator[str]:
    with service.feed.watch(job_id, lambda: service.jobs.get(job_id)) as (view, updates):
        yield _event(view)
        while view["status"] not in _FINAL:
            try:
                view = updates.get(timeout=KEEPALIVE_SECONDS)
            except queue.Empty:
                yield ": keepalive\n\n"
                continue
            yield _event(view)


def _event(view: dict[str, Any]) -> str:
    return f"event: job\ndata: {json.dumps(view)}\n\n"


def _cancel(job: Job) -> None:
    if not job.status.is_final:
        job.move_to(Status.CANCELLED)


def serve(
    settings: Settings,
    port: int = DEFAULT_PORT,
    model: Callable[[BlobStore], VideoModel] | None = None,
    web_dir: Path = WEB_DIR,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted. ``model`` replaces the preview renderer (tests inject failures)."""
    if not (web_dir / "index.html").is_file():
        raise InvalidRequest("web_dir", f"{web_dir} has no index.html")
    app = create_app(LocalService(settings, model), web_dir)
    server = make_server("127.0.0.1", port, app, threaded=True)
    if on_ready is not None:
        on_ready(f"http://127.0.0.1:{server.server_port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
