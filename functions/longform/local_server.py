"""``longform serve``: the web client on 127.0.0.1, against the embedded pipeline.

The page talks to this server the way it talks to Firebase, so one page serves both:

- the callables at the Functions emulator's path, ``POST /{project}/{region}/{function}``, speaking
  the callable protocol: ``{"data": …}`` in, ``{"result": …}`` or
  ``{"error": {"status", "message", "details"}}`` out, with Firebase's HTTP status codes;
- ``GET /__/longform/jobs/{jobId}/events``: server-sent events, the local twin of ``onSnapshot``:
  the job now, then every write to it, until it is final;
- ``GET /__/longform/jobs``: the user's recent jobs (My jobs);
- ``GET /__/longform/usage``: the video seconds used and left today (the daily budget), and the
  dollars the day's jobs spent (priced as on Veo: nothing is billed here);
- ``GET /prices.json``: the prices this server estimates with (``published_prices``), from its
  settings (PRICE_TABLE, VEO_MODEL), ahead of any ``web/prices.json`` ``make web`` wrote for Hosting;
- ``GET /__/longform/files/{key}``: segments and final videos from the blob folder, with Range
  requests (a ``<video>`` needs them to seek and to learn its duration);
- ``GET /__/longform/config.json``: tells the page it is in local mode;
- everything else: the static page in ``web/``.

It answers only requests addressed to a loopback name (``Host: 127.0.0.1:PORT`` or ``localhost``),
so a web page elsewhere cannot reach it by DNS rebinding, and runs at most
``LONGFORM_MAX_RUNNING_JOBS`` jobs at once (2); later ones wait, queued.

The callables are the use cases of ``service.JobService``, as in the cloud, with errors mapped
by ``callable_protocol``. There is one user, ``bootstrap.LOCAL_USER``. Jobs run in background
threads of this process; jobs left unfinished when the server (or a CLI) stopped are resumed when
it starts again.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request, send_file, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.serving import make_server

from . import bootstrap
from .adapters.local_blob_store import LocalBlobStore
from .callable_protocol import CallableError, callable_error, read_body
from .config import Settings
from .errors import InvalidRequest, LongformError, PermanentError
from .job import FINAL_STATUSES, Job, SegmentStatus, Status
from .ports import BlobStore, VideoModel
from .prices import ESTIMATED_STITCH_SECONDS_PER_MINUTE, Pricing
from .processes import gone
from .request import FRAME_SIZES

API = "/__/longform"
WEB_DIR = Path(__file__).resolve().parents[2] / "web"  # the repository's page (an editable install)
DEFAULT_PORT = 8765
KEEPALIVE_SECONDS = 15.0  # a comment line on an idle event stream, so proxies keep it open
_FINAL = {status.value for status in FINAL_STATUSES}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]"}
log = logging.getLogger(__name__)


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


class LocalBackend:
    """The embedded pipeline as the page's backend: the use cases for the one local user, the
    feed of job writes, and the job as the page reads it."""

    def __init__(
        self,
        settings: Settings,
        model: Callable[[BlobStore], VideoModel] | None = None,
        max_active_jobs: int | None = None,
    ) -> None:
        self.settings = settings
        self.files = LocalBlobStore(settings.blob_dir)  # the folder the pipeline's blob store writes
        self.feed = JobFeed(self.view)
        self.local = bootstrap.local(
            settings, model, on_update=self.feed.publish, max_active_jobs=max_active_jobs, link=self.key_url
        )
        self.service = self.local.service
        user = bootstrap.LOCAL_USER
        self.callables: dict[str, Callable[[Any], dict[str, Any]]] = {
            "trigger_long_form_video_job": lambda data: self.service.trigger(user, data),
            "cancel_long_form_video_job": lambda data: self.service.cancel(user, data),
            "resume_long_form_video_job": lambda data: self.service.resume(user, data),
            "edit_long_form_video_job": lambda data: self.service.edit(user, data),
            "get_playback_urls": lambda data: self.service.playback(user, data),
            "delete_long_form_video_job": lambda data: self.service.delete(user, data),
        }

    def resume_interrupted(self) -> list[str]:
        """Start again the jobs an earlier run of the server (or a killed CLI) left unfinished."""
        resumed = []
        for job in self.service.recent(bootstrap.LOCAL_USER, limit=1000):
            if job.is_interrupted(gone=gone):
                try:
                    self.service.resume(bootstrap.LOCAL_USER, {"jobId": job.job_id}, unfinished=True)
                    resumed.append(job.job_id)
                except LongformError as exc:  # another process took it meanwhile, say
                    log.warning("job %s not resumed: %s", job.job_id, exc)
        return resumed

    def job(self, job_id: str) -> Job:
        return self.service.job(bootstrap.LOCAL_USER, job_id)

    def recent(self) -> list[dict[str, Any]]:
        return [self.view(job) for job in self.service.recent(bootstrap.LOCAL_USER)]

    def view(self, job: Job) -> dict[str, Any]:
        """The job as the page reads it: the stored JSON, plus http URLs for what can be played."""
        data = job.to_json()
        for segment, out in zip(job.segments, data["segments"], strict=True):
            done = segment.status is SegmentStatus.COMPLETED
            out["url"] = self.file_url(segment.uri) if done and segment.uri else None
        if job.status is Status.COMPLETED and job.video_uri:
            data["videoUrl"] = self.file_url(job.video_uri)
        return data

    def key_url(self, key: str) -> str:
        """Where the page plays the file under ``key``."""
        return f"{API}/files/{urllib.parse.quote(key)}"

    def file_url(self, uri: str) -> str | None:
        """``file:///…/blobs/jobs/x/final/video.mp4`` → ``/__/longform/files/jobs/x/final/video.mp4``."""
        parsed = urllib.parse.urlparse(uri)
        if parsed.scheme != "file":
            return None
        path = Path(urllib.request.url2pathname(parsed.path))
        if not path.is_relative_to(self.files.root):
            return None
        return f"{API}/files/{urllib.parse.quote(path.relative_to(self.files.root).as_posix())}"


def create_app(backend: LocalBackend, web_dir: Path = WEB_DIR) -> Flask:
    app = Flask(__name__, static_folder=None)
    project, region = backend.settings.project, backend.settings.region

    @app.before_request
    def only_this_machine() -> tuple[dict[str, Any], int] | None:
        # A page on another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own
        # name as Host: only loopback names reach the jobs.
        if _host_name(request.host) not in LOOPBACK_NAMES:
            return _answer(CallableError("PERMISSION_DENIED", f"this server answers 127.0.0.1, not {request.host}"))
        return None

    @app.post("/<project_id>/<region_id>/<name>")
    def call(project_id: str, region_id: str, name: str) -> tuple[dict[str, Any], int]:
        if (project_id, region_id) != (project, region) or name not in backend.callables:
            return _answer(CallableError("NOT_FOUND", f"no function {project_id}/{region_id}/{name}"))
        if request.mimetype != "application/json":  # as firebase_functions answers it
            return _answer(CallableError("INVALID_ARGUMENT", "Bad Request"))
        try:
            return {"result": backend.callables[name](read_body(request.get_data()))}, 200
        except Exception as exc:
            return _answer(callable_error(exc))

    @app.get(f"{API}/config.json")
    def config() -> dict[str, Any]:
        return {
            "mode": "local",
            "project": project,
            "region": region,
            "user": bootstrap.LOCAL_USER.user_id,
            "playbackUrlMinutes": backend.settings.playback_url_minutes,
        }

    @app.get(f"{API}/jobs")
    def jobs() -> dict[str, Any]:
        return {"jobs": backend.recent()}

    @app.get(f"{API}/usage")
    def usage() -> dict[str, Any]:
        today = backend.service.usage(bootstrap.LOCAL_USER)
        ledger = backend.service.jobs.usage(bootstrap.LOCAL_USER.user_id, today["day"])
        return today | {"spentUsd": ledger.spent_usd}

    @app.get("/prices.json")
    def prices() -> Response:
        response = jsonify(published_prices(backend.local.pipeline.pricing))
        response.headers["Cache-Control"] = "no-cache"
        return response

    @app.get(f"{API}/jobs/<job_id>/events")
    def events(job_id: str) -> Response | tuple[dict[str, Any], int]:
        try:
            backend.job(job_id)
        except LongformError as exc:
            return _answer(callable_error(exc))
        return Response(
            _event_stream(backend, job_id),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(f"{API}/files/<path:key>")
    def files(key: str) -> Response:
        try:
            path = backend.files.path(key)
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


def published_prices(pricing: Pricing) -> dict[str, Any]:
    """The prices the page estimates with, as ``prices.json``: the table in effect, the model the
    scenes are priced as, the stitch, whether nothing is billed, and what ``Pricing.estimate``
    reads besides (the frame sizes, the in-function stitch's allowance). ``web/estimate.js``
    repeats ``Pricing.estimate``'s arithmetic over it; ``longform serve`` answers it, and
    ``make web`` writes it for Hosting (devtools/web_config.py)."""
    return {
        "currency": pricing.table.currency,
        "pricedAs": pricing.model,
        "stitch": pricing.stitch,
        "estimated": pricing.estimated,
        "pricesAsOf": pricing.table.veo_price(pricing.model).as_of,
        "table": pricing.table.model_dump(mode="json", by_alias=True),
        "frameSizes": {f"{aspect} {resolution}": list(size) for (aspect, resolution), size in FRAME_SIZES.items()},
        "estimatedStitchSecondsPerMinute": ESTIMATED_STITCH_SECONDS_PER_MINUTE,
    }


def _host_name(host: str) -> str:
    """``127.0.0.1:8765`` → ``127.0.0.1``; ``[::1]:8765`` → ``[::1]``; ``localhost`` → ``localhost``."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rpartition(":")[0] if ":" in host else host


def _answer(error: CallableError) -> tuple[dict[str, Any], int]:
    return error.body(), error.http_status


def _event_stream(backend: LocalBackend, job_id: str) -> Iterator[str]:
    with backend.feed.watch(job_id, lambda: backend.job(job_id)) as (view, updates):
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
    backend = LocalBackend(settings, model)
    app = create_app(backend, web_dir)
    for job_id in backend.resume_interrupted():
        log.warning("resuming job %s, interrupted when the server last stopped", job_id)
    server = make_server("127.0.0.1", port, app, threaded=True)
    if on_ready is not None:
        on_ready(f"http://127.0.0.1:{server.server_port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
