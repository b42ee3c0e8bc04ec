"""The Inngest endpoint: both functions served by the SDK's Flask integration, behind the
``inngest_api`` HTTPS function of ``main.py``.

The Flask app is built on the first request, not at import: in cloud mode the SDK refuses to
serve without a signing key, and ``firebase deploy`` imports ``main.py`` with no secrets.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import flask
import inngest
import inngest.flask

from . import inngest_client, params
from .generate_long_form_video import generate_long_form_video
from .stitch_video import stitch_video


def functions() -> list[inngest.Function[Any]]:
    return [generate_long_form_video, stitch_video]


def handle(request: flask.Request) -> flask.Response:
    """Answer one request from Inngest (GET introspection, PUT sync, POST run a step)."""
    app, route = _app(inngest_client.client)
    # Firebase serves the function at its own URL (the function sees "/" or its name), so every
    # request goes to the one Inngest route whatever its path; the body is handed over as bytes
    # in case the stream was read already.
    body = request.get_data()
    environ = {
        **request.environ,
        "PATH_INFO": route,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    with app.request_context(environ):
        return app.full_dispatch_request()


@functools.cache
def _app(client: inngest.Inngest) -> tuple[flask.Flask, str]:
    """A Flask app serving the functions for ``client`` (cached per client: tests swap it)."""
    route = params.INNGEST_SERVE_PATH.value or "/api/inngest"
    app = flask.Flask(__name__)
    inngest.flask.serve(
        app,
        client,
        functions(),
        # Where Inngest reaches us, registered on sync; empty means the request's own URL.
        serve_origin=params.INNGEST_SERVE_ORIGIN.value or None,
        serve_path=route,
    )
    return app, route
