"""The Google Cloud and Inngest stand-ins a deployment talks to, made to behave like the real
services on real media: the Vertex stand-in renders each Veo request with the preview renderer
into Cloud Storage, the Transcoder stand-in joins the segments into the output file there, a token
endpoint backs Application Default Credentials, and the Inngest dev server stand-in runs the
functions. ``running_standins`` starts them all in this process (threads); ``make emulators``
and the emulator end-to-end tests share it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from devtools.inngest_standin import InngestDevServer
from devtools.oauth_standin import OAuthStandIn
from devtools.transcoder_standin import JobJson, TranscoderStandIn
from devtools.vertex_standin import VertexStandIn
from longform.adapters.gcs_blob_store import GcsBlobStore
from longform.adapters.preview_video_model import render_preview
from longform.adapters.pyav_stitcher import concat_mp4
from longform.request import FRAME_SIZES


def veo_renders_into(gcs: GcsBlobStore) -> Callable[[dict[str, Any], str], None]:
    """What Veo does with a request: a video of the asked length and size at the asked URI,
    starting from the given first frame."""

    def make(request: dict[str, Any], output_uri: str) -> None:
        instance, params = request["instances"][0], request["parameters"]
        width, height = FRAME_SIZES[(params["aspectRatio"], params.get("resolution", "720p"))]
        with tempfile.TemporaryDirectory() as tmp:
            first = None
            if "image" in instance:
                first = Path(tmp) / "first.png"
                with gcs.local_path(gcs.key_of(instance["image"]["gcsUri"])) as png:
                    first.write_bytes(png.read_bytes())
            out = Path(tmp) / "sample_0.mp4"
            render_preview(
                out,
                prompt=instance["prompt"],
                seconds=params["durationSeconds"],
                width=width,
                height=height,
                generate_audio=params.get("generateAudio", False),
                seed=params.get("seed"),
                first_frame=first,
            )
            gcs.upload(gcs.key_of(output_uri), out)

    return make


def transcoder_concats_into(gcs: GcsBlobStore) -> Callable[[JobJson], None]:
    """What the Transcoder does with a concatenation job: the edit list's inputs, in order, joined
    into ``output.uri`` + the mux stream's file name (a stream copy here; the service re-encodes)."""

    def make(job: JobJson) -> None:
        config = job["config"]
        uris = {i["key"]: i["uri"] for i in config["inputs"]}
        ordered = [uris[key] for atom in config["editList"] for key in atom["inputs"]]
        output = config["output"]["uri"] + config["muxStreams"][0]["fileName"]
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            inputs = [stack.enter_context(gcs.local_path(gcs.key_of(uri))) for uri in ordered]
            out = Path(tmp) / "out.mp4"
            concat_mp4(inputs, out)
            gcs.upload(gcs.key_of(output), out)

    return make


def storage_client(url: str, project: str) -> Any:
    """A client of the Cloud Storage emulator at ``url``, whatever STORAGE_EMULATOR_HOST says."""
    return storage.Client(project=project, credentials=AnonymousCredentials(), client_options={"api_endpoint": url})


@dataclass
class StandIns:
    vertex: VertexStandIn
    transcoder: TranscoderStandIn
    oauth: OAuthStandIn
    inngest: InngestDevServer
    gcs: GcsBlobStore


@contextmanager
def running_standins(
    storage_url: str,
    bucket: str,
    project: str,
    sleep_factor: float = 1.0,
    retry_base_seconds: float = 10.0,
    transcoder_seconds: float | None = None,
    pubsub_url: str | None = None,
) -> Iterator[StandIns]:
    """Every stand-in, serving on 127.0.0.1 (free ports) until the block ends. The Transcoder's jobs
    report RUNNING, then SUCCEEDED (set ``transcoder.states`` for the jobs to come): at the next
    poll, or by themselves ``transcoder_seconds`` after their create; a job whose config names a
    Pub/Sub topic is announced there, on the emulator at ``pubsub_url``, when it ends."""
    gcs = GcsBlobStore(storage_client(storage_url, project), bucket)
    with ExitStack() as stack:
        yield StandIns(
            vertex=stack.enter_context(VertexStandIn(on_generate=veo_renders_into(gcs))),
            transcoder=stack.enter_context(
                TranscoderStandIn(
                    states=("RUNNING", "SUCCEEDED"),
                    on_create=transcoder_concats_into(gcs),
                    finish_after=transcoder_seconds,
                    pubsub_url=pubsub_url,
                )
            ),
            oauth=stack.enter_context(OAuthStandIn()),
            inngest=stack.enter_context(
                InngestDevServer(sleep_factor=sleep_factor, retry_base_seconds=retry_base_seconds)
            ),
            gcs=gcs,
        )
