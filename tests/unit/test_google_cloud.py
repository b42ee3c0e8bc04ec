"""The helpers every Google Cloud adapter shares."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest

from longform.adapters.google_cloud import gcs_key, gcs_uri, label_value, labels, retry_after
from longform.errors import PermanentError


def test_gs_uris_and_keys_round_trip_and_other_buckets_are_refused() -> None:
    uri = gcs_uri("b", "jobs/j/segments/0.mp4")
    assert uri == "gs://b/jobs/j/segments/0.mp4" and gcs_key("b", uri) == "jobs/j/segments/0.mp4"
    with pytest.raises(PermanentError, match=r"the video is outside gs://b: gs://other/x.mp4"):
        gcs_key("b", "gs://other/x.mp4", "the video")
    for bad in ("gs://b/../x", "gs://b/a//b", "gs://b/"):
        with pytest.raises(PermanentError):
            gcs_key("b", bad)


def test_label_values_are_valid_and_long_ids_stay_distinct() -> None:
    assert labels("Job-1", "uid.of@someone") == {"jobid": "job-1", "userid": "uid_of_someone"}
    a, b = label_value("x" * 70 + "a"), label_value("x" * 70 + "b")
    assert len(a) == len(b) == 63 and a != b


def test_retry_after_reads_seconds_dates_and_retry_info() -> None:
    assert retry_after("30") == 30.0
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 85 < (retry_after(soon) or 0) <= 90
    assert retry_after(None, [{"@type": "x"}, {"retryDelay": "12s"}]) == 12.0
    assert retry_after(None) is None and retry_after("soon") is None
