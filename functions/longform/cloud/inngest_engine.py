"""The cloud Engine: a job's run is an Inngest run, started and cancelled by events."""

from __future__ import annotations

import inngest

from ..job import Job
from .inngest_client import JOB_CANCELLED, JOB_REQUESTED, send_event


class InngestEngine:
    def __init__(self, client: inngest.Inngest) -> None:
        self.client = client

    def start(self, job: Job) -> None:
        # The event id is the job id: should the send be retried after it went through, Inngest
        # drops the repeat (24 h), and the function's idempotency key allows one run per job.
        send_event(self.client, JOB_REQUESTED, {"jobId": job.job_id, "userId": job.user_id}, id=job.job_id)

    def cancel(self, job: Job) -> None:
        send_event(self.client, JOB_CANCELLED, {"jobId": job.job_id, "userId": job.user_id})
