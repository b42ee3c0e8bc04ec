"""The cloud Stitcher: one Transcoder API job re-encodes the segments, in order, into one MP4.

The segments are the job's ``inputs`` (an unordered set, keyed ``seg0``, ``seg1``…); the order
lives in ``editList``, one atom per segment. The Transcoder refuses inputs shorter than 5 s, and
once an audio stream is configured every atom needs an input with audio; a job that breaks a rule
the service only sees in the media ends FAILED, which ``poll`` reports as a PermanentError.

Each job carries the labels of the Longform job and of its run (``Job.run_key``). ``start`` first
lists the run's jobs by that label: when a create went through but its answer was lost, the step's
retry finds the job it made instead of paying for a second one. ``cancel`` deletes the job, which
stops it if it still runs.

``poll`` is called by the Firestore-triggered poller, which owns retries and backoff: the client's
own retry of ``get_job`` (ServiceUnavailable, for up to 60 s) is turned off so one poll is one
request and a 503 comes back at once as a TransientError.

With a ``topic`` (a Pub/Sub topic id of the project), each job's config carries
``pubsubDestination.topic = projects/{project}/topics/{topic}``: when the job ends (SUCCEEDED or
FAILED, no other state) the service publishes ``{"job": {"name", "state", "error"}}`` there
(https://cloud.google.com/transcoder/docs/how-to/create-pub-sub), which the Pub/Sub function
receives (cloud/stitch_notifications.py). The Transcoder's service agent
(service-PROJECT_NUMBER@gcp-sa-transcoder.iam.gserviceaccount.com) needs pubsub.topics.publish on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from google.cloud.video.transcoder_v1 import TranscoderServiceClient
from google.cloud.video.transcoder_v1.types import (
    AudioStream,
    EditAtom,
    ElementaryStream,
    Input,
    Job,
    JobConfig,
    MuxStream,
    Output,
    PubsubDestination,
    VideoStream,
)

from ..errors import PermanentError, QuotaExceeded, TransientError
from ..ports import StitchJob, StitchSpec
from ..request import TRANSCODER_MIN_SECONDS
from .google_cloud import credentials_error, gcs_key, gcs_uri, label_value, labels, retry_after

T = TypeVar("T")

FRAME_RATE = 24  # Veo's output rate; the re-encode keeps it
AUDIO_BITRATE_BPS = 192_000
_STILL_RUNNING = {
    Job.ProcessingState.PENDING,
    Job.ProcessingState.RUNNING,
    Job.ProcessingState.PROCESSING_STATE_UNSPECIFIED,  # not worth failing for: the poller's round limit ends it
}


def transcoder_client(
    api_endpoint: str | None = None, credentials: Credentials | None = None
) -> TranscoderServiceClient:
    """A REST client. ``api_endpoint`` may carry a scheme (``http://127.0.0.1:8123``); without
    one the transport uses https. ``None`` means the public endpoint and Application Default
    Credentials."""
    options = {"api_endpoint": api_endpoint} if api_endpoint else None
    return TranscoderServiceClient(transport="rest", client_options=options, credentials=credentials)


class TranscoderStitcher:
    def __init__(
        self,
        client: TranscoderServiceClient,
        project: str,
        location: str,
        bucket: str,
        ttl_days: int = 1,
        topic: str | None = None,
    ) -> None:
        """``topic``: a Pub/Sub topic id of ``project`` the service tells when each job ends (None:
        nobody is told; the poller finds out)."""
        if not 1 <= ttl_days <= 90:
            raise ValueError(f"ttl_days must be between 1 and 90, got {ttl_days}")
        self.client = client
        self.parent = f"projects/{project}/locations/{location}"
        self.bucket = bucket
        self.ttl_days = ttl_days
        self.topic = f"projects/{project}/topics/{topic}" if topic else None

    def start(self, spec: StitchSpec) -> str:
        if spec.segment_seconds < TRANSCODER_MIN_SECONDS:
            raise PermanentError(
                f"the Transcoder needs inputs of at least {TRANSCODER_MIN_SECONDS} s, but the segments are "
                f"{spec.segment_seconds} s: use the in-process stitcher (STITCH_BACKEND=ffmpeg) "
                "or segmentSeconds 6 or 8"
            )
        if not spec.segment_keys:
            raise PermanentError("nothing to stitch")
        run = label_value(spec.run_key)
        made = self._made_for(run)
        if made is not None:
            return made
        job = Job(
            config=self._config(spec),
            labels={**labels(spec.job_id, spec.user_id), "run": run},
            ttl_after_completion_days=self.ttl_days,
        )
        created = _call(self.client.create_job, parent=self.parent, job=job)
        return str(created.name)

    def cancel(self, name: str) -> None:
        _call(self.client.delete_job, request={"name": name, "allow_missing": True}, retry=None)

    def _made_for(self, run: str) -> str | None:
        """The job an earlier attempt of this run created, if any. Whatever its state it is the
        run's stitch: one that failed fails the job with its own reason, and a resume is a new run."""
        request = {"parent": self.parent, "filter": f'labels.run="{run}"'}
        pager = _call(self.client.list_jobs, request=request, retry=None)
        first = next(iter(pager.jobs), None)  # the first page, already fetched: no further request
        return str(first.name) if first is not None else None

    def poll(self, name: str) -> StitchJob:
        job = _call(self.client.get_job, name=name, retry=None)  # the poller retries, with backoff
        state = job.state
        if state in _STILL_RUNNING:
            return StitchJob(name, done=False)
        if state == Job.ProcessingState.SUCCEEDED:
            return StitchJob(name, done=True, key=self._output_key(job))
        message = job.error.message or "no reason given"
        raise PermanentError(f"Transcoder job failed: {message}")

    def _config(self, spec: StitchSpec) -> JobConfig:
        folder, _, file_name = spec.output_key.rpartition("/")
        if not folder or not file_name.endswith(".mp4"):
            raise PermanentError(f"output key {spec.output_key!r} is not an .mp4 inside a folder")
        inputs = [Input(key=f"seg{i}", uri=gcs_uri(self.bucket, key)) for i, key in enumerate(spec.segment_keys)]
        h264 = VideoStream.H264CodecSettings(
            width_pixels=spec.width,
            height_pixels=spec.height,
            frame_rate=FRAME_RATE,
            bitrate_bps=_video_bitrate(spec.width, spec.height),
            pixel_format="yuv420p",
            gop_duration=timedelta(seconds=2),  # a keyframe every 2 s keeps seeking quick
        )
        streams = [ElementaryStream(key="video-stream", video_stream=VideoStream(h264=h264))]
        if spec.audio:
            audio = AudioStream(
                codec="aac",
                bitrate_bps=AUDIO_BITRATE_BPS,
                sample_rate_hertz=48_000,
                channel_count=2,
                channel_layout=["fl", "fr"],
            )
            streams.append(ElementaryStream(key="audio-stream", audio_stream=audio))
        return JobConfig(
            inputs=inputs,
            edit_list=[
                EditAtom(key=f"atom{i}", inputs=[segment.key], start_time_offset=timedelta(0))
                for i, segment in enumerate(inputs)
            ],
            elementary_streams=streams,
            mux_streams=[
                MuxStream(
                    key="video",
                    file_name=file_name,
                    container="mp4",
                    elementary_streams=[s.key for s in streams],
                )
            ],
            output=Output(uri=gcs_uri(self.bucket, folder) + "/"),
            pubsub_destination=PubsubDestination(topic=self.topic) if self.topic else None,
        )

    def _output_key(self, job: Job) -> str:
        """The produced file's key, read from the job itself (``poll`` only has the name)."""
        if not job.config.mux_streams:
            raise PermanentError(f"Transcoder job {job.name} has no output file")
        folder = gcs_key(self.bucket, job.config.output.uri.rstrip("/"), f"the output of Transcoder job {job.name}")
        mux = job.config.mux_streams[0]
        file_name = mux.file_name or f"{mux.key}.{mux.container or 'mp4'}"
        return f"{folder}/{file_name}"


def _video_bitrate(width: int, height: int) -> int:
    """YouTube's recommended rates for 24 fps SDR uploads: the output is a master, not a stream."""
    return 5_000_000 if min(width, height) <= 720 else 8_000_000


def _call(method: Callable[..., T], **kwargs: Any) -> T:
    """Call the client and map its errors to ours (see errors.py)."""
    try:
        return method(**kwargs)
    except api_exceptions.TooManyRequests as exc:  # 429, ResourceExhausted
        raise QuotaExceeded(f"Transcoder quota: {exc.message}", retry_after=_retry_after(exc)) from exc
    except (api_exceptions.ServerError, api_exceptions.RetryError) as exc:  # 5xx, DeadlineExceeded
        raise TransientError(f"Transcoder unavailable: {exc}") from exc
    except api_exceptions.GoogleAPICallError as exc:  # InvalidArgument, NotFound, PermissionDenied…
        raise PermanentError(f"Transcoder refused: {exc.message}") from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError(f"Transcoder unreachable: {exc}") from exc
    except auth_exceptions.GoogleAuthError as exc:  # fetching a token (the metadata server, say)
        raise credentials_error("Transcoder", exc) from exc


def _retry_after(exc: api_exceptions.GoogleAPICallError) -> float | None:
    response = exc.response
    return retry_after(response.headers.get("Retry-After") if isinstance(response, requests.Response) else None)
