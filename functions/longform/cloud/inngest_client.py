"""The ``longform`` Inngest app: its id, the events it speaks, and sending them.

The client is made by the composition root (``Cloud.inngest``) and needs no secret when made:
the SDK reads ``INNGEST_EVENT_KEY`` and ``INNGEST_SIGNING_KEY`` from the environment (where
Firebase puts the secrets), and only serving or sending needs them. ``INNGEST_DEV`` (``1``, or the
dev server's URL) selects dev mode: no signatures, events go to the dev server; without it the
client is in cloud mode. ``INNGEST_BASE_URL`` / ``INNGEST_EVENT_API_BASE_URL`` /
``INNGEST_API_BASE_URL`` override origins.
"""

from __future__ import annotations

from collections.abc import Mapping

import inngest

from ..errors import TransientError

APP_ID = "longform"

JOB_REQUESTED = "video/long_form.requested"  # data: jobId, userId, runKey
JOB_CANCELLED = "video/long_form.cancelled"  # data: jobId, userId
STITCH_REQUESTED = "video/stitch.requested"  # data: jobId, userId, segmentKeys, runKey


def send_event(
    client: inngest.Inngest, name: str, data: Mapping[str, inngest.JSON], id: str | None = None
) -> list[str]:
    """Send one event; ``id`` makes Inngest drop a repeat of it (24 h). Returns the event ids.

    Any failure of the SDK or the network (it already retried 5xx and connection errors) is a
    TransientError: the caller may try again."""
    event = inngest.Event(name=name, data=data, id=id or "")
    try:
        return client.send_sync(event)
    except Exception as exc:
        raise TransientError(f"could not send {name}: {exc}") from exc


def event_field(event: inngest.Event, name: str) -> str:
    """A required string in one of our events' data; a run without it cannot do anything useful."""
    value = event.data.get(name)
    if not isinstance(value, str) or not value:
        raise inngest.NonRetriableError(f"{event.name} without {name}")
    return value


def run_key_of(event: inngest.Event) -> str:
    """The run's key (``Job.run_key``): the job id, ``jobId-rN`` after a resume, ``jobId-vN`` for a version."""
    key = event.data.get("runKey")
    return key if isinstance(key, str) and key else event_field(event, "jobId")
