"""``firestore_fn.on_document_updated`` without importing ``firestore_fn`` until the first event.

``firebase_functions.firestore_fn`` imports google-cloud-firestore, google-events and cloudevents
(about half of a cold ``import main``), and every deployed function imports ``main.py`` when its
instance starts, callables included. Only the poller's instances need them: here the endpoint
that ``firebase deploy`` discovers (``__firebase_endpoint__``) is made exactly as the library makes
it, from the options module the other decorators load anyway, and the library's own decorator
wraps the handler on the first event, which it then parses and hands over as usual.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from firebase_functions import options
from firebase_functions.private import path_pattern, util

# firestore_fn._event_type_updated (a test checks that the endpoints are the library's own).
UPDATED = "google.cloud.firestore.document.v1.updated"

Handler = Callable[[Any], None]


def on_document_updated(**kwargs: Any) -> Callable[[Handler], Callable[[Any], None]]:
    """As ``firestore_fn.on_document_updated(**kwargs)``: the handler gets a
    ``firestore_fn.Event[firestore_fn.Change[DocumentSnapshot | None]]``."""
    firestore_options = options.FirestoreOptions(**kwargs)

    def decorate(handler: Handler) -> Callable[[Any], None]:
        lock = threading.Lock()
        wrapped: list[Callable[[Any], None]] = []

        def library_handler() -> Callable[[Any], None]:
            with lock:
                if not wrapped:
                    from firebase_functions import firestore_fn

                    wrapped.append(firestore_fn.on_document_updated(**kwargs)(handler))
                return wrapped[0]

        @functools.wraps(handler)
        def on_document_updated_wrapped(raw: Any) -> None:  # raw: a cloudevents CloudEvent
            return library_handler()(raw)

        pattern = path_pattern.PathPattern(util.normalize_path(firestore_options.document))
        endpoint = firestore_options._endpoint(event_type=UPDATED, func_name=handler.__name__, document_pattern=pattern)
        util.set_func_endpoint_attr(on_document_updated_wrapped, endpoint)
        return on_document_updated_wrapped

    return decorate
