"""The Inngest endpoint: both functions served by the SDK's Flask integration, behind the
``inngest_api`` HTTPS function of ``main.py``.

The Flask app is built on the first request, not at import: in cloud mode the SDK refuses to
serve without a signing key, and ``firebase deploy`` imports ``main.py`` with no secrets. The
Inngest SDK and the functions' modules are imported then too, so that the other functions of
``main.py``, which import this module, do not pay for them when they start cold.
"""

from __future__ import annotations

import functools
import io
from typing import TYPE_CHECKING, Any

import flask

if TYPE_CHECKING:
    import inngest

    from .composition import Cloud


def functions(cloud: Cloud) -> list[inngest.Function[Any]]:
    from . import generate_long_form_video, stitch_video

    return [generate_long_form_video.create(cloud), stitch_video.create(cloud)]


def handle(request: flask.Request, cloud: Cloud) -> flask.Response:
    """Answer one request from Inngest (GET introspection, PUT sync, POST run a step)."""
    app, route = _app(cloud)
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
def _app(cloud: Cloud) -> tuple[flask.Flask, str]:
    """A Flask app serving the functions of ``cloud`` (one per composition: tests make their own)."""
    import inngest.flask

    route = cloud.settings.inngest_serve_path or "/api/inngest"
    app = flask.Flask(__name__)
    inngest.flask.serve(
        app,
        cloud.inngest,
        functions(cloud),
        # Where Inngest reaches us, registered on sync; empty means the request's own URL.
        serve_origin=cloud.settings.inngest_serve_origin or None,
        serve_path=route,
    )
    return app, route
