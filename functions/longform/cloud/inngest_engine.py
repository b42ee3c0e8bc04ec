"""The cloud Engine: a job's run is an Inngest run, started and cancelled by events."""

from __future__ import annotations

import inngest

from ..job import Job
from .inngest_client import JOB_CANCELLED, JOB_REQUESTED, send_event


class InngestEngine:
    def __init__(self, client: inngest.Inngest) -> None:
        self.client = client

    def start(self, job: Job) -> None:
        # The event id is the run's key (the job id, then jobId-r1… for each resume): should the send
        # be retried after it went through, Inngest drops the repeat (24 h), and the function's
        # idempotency key (the same runKey) allows one run per job, resume and version, not one per job.
        data = {"jobId": job.job_id, "userId": job.user_id, "runKey": job.run_key}
        send_event(self.client, JOB_REQUESTED, data, id=job.run_key)

    def cancel(self, job: Job) -> None:
        send_event(self.client, JOB_CANCELLED, {"jobId": job.job_id, "userId": job.user_id})
