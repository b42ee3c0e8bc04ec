"""The cloud VideoModel: Veo on Vertex AI, through google-genai with ``vertexai=True``.

``start`` calls ``predictLongRunning`` and returns Vertex's own operation name
(``projects/…/publishers/google/models/{model}/operations/{id}``). ``poll`` rebuilds the operation
from that name alone and asks ``fetchPredictOperation``, so a resumed run polls what an earlier
process started and never starts a second generation. Veo writes the MP4 under ``output_gcs_uri``
with a name of its own (``…/segments/3/{id}/sample_0.mp4``); ``poll`` returns that object's key.

One call is one HTTP request: the SDK's own retries are off, so the durable step engine alone
decides when to try again (and a lost ``start`` response is not silently retried by the SDK).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from google import genai
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from google.genai import errors as genai_errors
from google.genai import types

from ..errors import GenerationFailed, PermanentError, QuotaExceeded, TransientError
from ..ports import Operation, SegmentSpec
from .google_cloud import credentials_error, gcs_key, gcs_uri, labels, retry_after

# google.rpc codes of a failed operation that a new generation may not meet: DEADLINE_EXCEEDED,
# RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE. Others (INVALID_ARGUMENT…) will recur.
_TRANSIENT_CODES = frozenset({4, 8, 10, 13, 14})
# Veo 2 has neither audio nor a resolution choice (720p only): it gets neither parameter.
_NO_AUDIO_OR_RESOLUTION = ("veo-2",)


def veo_client(
    project: str,
    location: str,
    http_base_url: str | None = None,
    *,
    credentials: Credentials | None = None,
    timeout_seconds: float = 60.0,
) -> genai.Client:
    """A Vertex AI client. ``credentials=None`` means Application Default Credentials.

    ``http_base_url`` replaces ``https://{location}-aiplatform.googleapis.com`` (a proxy, a local
    server). google-genai sends a bearer token on every Vertex call and refreshes credentials that
    have none, so ``AnonymousCredentials`` fails; a static-token ``google.oauth2.credentials.Credentials``
    works for a server that ignores tokens.
    """
    options = types.HttpOptions(
        base_url=http_base_url,
        timeout=int(timeout_seconds * 1000),  # milliseconds; without it a hung connection never ends
        retry_options=types.HttpRetryOptions(attempts=1),  # the step engine retries, not the SDK
    )
    return genai.Client(
        vertexai=True, project=project, location=location, credentials=credentials, http_options=options
    )


# Veo takes a minute or more for a clip, and never finishes in under about 30 s: the workflow does
# not poll an operation sooner (a poll is a request against the project's quota).
EARLIEST_DONE_SECONDS = 30.0


class VeoVideoModel:
    earliest_done_seconds = EARLIEST_DONE_SECONDS  # a stand-in that finishes sooner: Pipeline.poll_floor_seconds

    def __init__(self, client: genai.Client, model: str, bucket: str) -> None:
        self.client = client
        self.model = model
        self.bucket = bucket

    def start(self, spec: SegmentSpec) -> str:
        image = None
        if spec.first_frame_key:
            image = types.Image(gcs_uri=gcs_uri(self.bucket, spec.first_frame_key), mime_type="image/png")
        veo2 = self.model.rsplit("/", 1)[-1].startswith(_NO_AUDIO_OR_RESOLUTION)
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=spec.seconds,
            aspect_ratio=spec.aspect_ratio,
            resolution=None if veo2 else spec.resolution,
            generate_audio=None if veo2 else spec.generate_audio,
            negative_prompt=spec.negative_prompt,
            seed=spec.seed,
            # A folder: Veo names the file itself. Without it the video would come back inline.
            output_gcs_uri=gcs_uri(self.bucket, spec.output_key.removesuffix(".mp4")) + "/",
            labels=labels(spec.job_id, spec.user_id),
        )
        source = types.GenerateVideosSource(prompt=spec.prompt, image=image)
        with _mapped_errors("start a Veo generation"):
            operation = self.client.models.generate_videos(model=self.model, source=source, config=config)
        if not operation.name:
            raise PermanentError("Veo accepted the request but returned no operation name")
        return operation.name

    def poll(self, operation: str) -> Operation:
        """Raises PermanentError if the operation ended without a video; the message says why (the
        safety filter's reasons, say) but not which scene: the caller knows that."""
        with _mapped_errors("poll the Veo operation"):
            # The name is all the SDK needs to ask fetchPredictOperation (model_validate: the pydantic
            # plugin does not see ``name``, which the SDK declares on a non-pydantic base class).
            op = self.client.operations.get(types.GenerateVideosOperation.model_validate({"name": operation}))
        if not op.done:
            return Operation(operation, done=False)
        if op.error:
            # A finished operation answers the same forever: polling it again cannot help. With a
            # transient code (UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL…) a new generation may.
            code, message = op.error.get("code"), op.error.get("message") or "no message"
            again = code in _TRANSIENT_CODES
            raise GenerationFailed(f"Veo failed to generate the video (code {code}): {message}", again=again)
        return Operation(operation, done=True, key=self._video_key(op.response))

    def _video_key(self, response: types.GenerateVideosResponse | None) -> str:
        videos = (response.generated_videos if response else None) or []
        video = videos[0].video if videos else None
        if video is None:
            if response and response.rai_media_filtered_count:
                reasons = "; ".join(response.rai_media_filtered_reasons or []) or "no reason given"
                raise PermanentError(f"Veo's safety filters blocked the video: {reasons}")
            raise PermanentError("Veo finished without a video")
        if not video.uri:
            raise PermanentError("Veo returned the video inline instead of writing it to Cloud Storage")
        return gcs_key(self.bucket, video.uri, "the video Veo wrote")


def _transport_errors() -> tuple[type[Exception], ...]:
    """Connection failures and timeouts of whichever HTTP library the SDK picked (httpx2 by
    default, httpx as its fallback)."""
    found: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        with suppress(ImportError):
            found.append(importlib.import_module(name).TransportError)
    return tuple(found)


@contextmanager
def _mapped_errors(doing: str) -> Iterator[None]:
    """Turn the SDK's errors into ours (see errors.py)."""
    try:
        yield
    except genai_errors.APIError as exc:
        code = exc.code or 0
        detail = f"could not {doing}: {code} {exc.status or ''} {exc.message or ''}".strip()
        if code == 429:
            raise QuotaExceeded(detail, retry_after=_retry_after(exc)) from exc
        if code == 408 or (code >= 500 and code != 501):
            raise TransientError(detail, retry_after=_retry_after(exc)) from exc
        raise PermanentError(detail) from exc  # 400 INVALID_ARGUMENT, 403, 404, …
    except _transport_errors() as exc:
        raise TransientError(f"could not {doing}: {type(exc).__name__}: {exc}") from exc
    except auth_exceptions.GoogleAuthError as exc:  # fetching a token (the metadata server, say)
        raise credentials_error(f"could not {doing}", exc) from exc


def _retry_after(exc: genai_errors.APIError) -> float | None:
    headers = getattr(exc.response, "headers", None)
    error = exc.details.get("error") if isinstance(exc.details, dict) else None
    return retry_after(headers.get("retry-after") if headers is not None else None, (error or {}).get("details") or [])
