"""The one settings model: defaults that run offline, values validated at load, errors naming
the environment variable, and the Firebase params declared from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from longform.config import DEFAULT_REGION, DEMO_PROJECT, Settings
from longform.errors import InvalidSetting


def test_the_defaults_run_offline() -> None:
    settings = Settings.from_env({})
    assert (settings.project, settings.region) == (DEMO_PROJECT, DEFAULT_REGION)
    assert settings.data_dir == Path(".longform") and settings.local_dir is None
    assert (settings.video_model, settings.stitch_backend, settings.max_active_jobs) == ("veo", "transcoder", 3)


def test_values_come_from_their_environment_names_and_empty_ones_count_as_unset() -> None:
    settings = Settings.from_env(
        {
            "POLL_SECONDS": "2.5",
            "LONGFORM_CONCURRENCY": "3",
            "LONGFORM_LOCAL_DIR": "",
            "STITCH_BACKEND": "ffmpeg",
            "GOOGLE_CLOUD_PROJECT": "my-project",
            "LONGFORM_DATA_DIR": "/tmp/jobs",
        }
    )
    assert (settings.poll_seconds, settings.concurrency, settings.local_dir) == (2.5, 3, None)
    assert (settings.stitch_backend, settings.project, settings.data_dir) == ("ffmpeg", "my-project", Path("/tmp/jobs"))
    assert Settings.from_env({"GCLOUD_PROJECT": "a", "GOOGLE_CLOUD_PROJECT": "b"}).project == "a"


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("POLL_SECONDS", "-1", "must be at least 0"),
        ("POLL_SECONDS", "soon", "must be a number"),
        ("USER_CONCURRENCY", "abc", "must be a whole number"),
        ("MODEL_CONCURRENCY", "0", "must be at least 1"),
        ("SIGNED_URL_HOURS", "169", "must be at most 168"),
        ("MAX_ACTIVE_JOBS", "0", "must be at least 1"),
        ("STITCH_POLL_BUDGET_SECONDS", "600", "must be at most 480"),
        ("POLL_SECONDS", "61", "must be at most 60"),
        ("POLL_BUDGET_SECONDS", "0", "must be at least 1"),
        ("POLL_BUDGET_SECONDS", "1800", "must be at most 900"),
        ("POLL_FLOOR_SECONDS", "-5", "must be at least 0"),
        ("STITCH_BACKEND", "gpu", "must be one of 'transcoder' or 'ffmpeg'"),
        ("VIDEO_MODEL", "sora", "must be one of 'veo' or 'preview'"),
        ("VEO_MODEL", "imagen-3", r"must match ^veo-[a-z0-9.-]+$"),
        ("LONGFORM_RETRY_ATTEMPTS", "0", "must be at least 1"),
        ("LONGFORM_RETRY_BASE_SECONDS", "-0.5", "must be at least 0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_the_rule_and_the_value(name: str, value: str, rule: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        Settings.from_env({name: value})
    assert (caught.value.setting, caught.value.rule) == (name, rule)
    assert str(caught.value) == f"{name}: {rule}, got {value!r}"


def test_only_reads_just_the_named_fields() -> None:
    settings = Settings.from_env({"LONGFORM_REGION": "europe-west4", "POLL_SECONDS": "-1"}, only={"region"})
    assert settings.region == "europe-west4" and settings.poll_seconds == 5


def test_changes_are_validated_like_the_environment() -> None:
    changed = Settings().with_(concurrency=2)
    assert changed.concurrency == 2
    assert changed.model_fields_set == {"concurrency"}  # what was set on purpose, nothing else
    with pytest.raises(InvalidSetting, match="LONGFORM_CONCURRENCY: must be at least 1"):
        Settings().with_(concurrency=0)


def test_every_setting_has_one_environment_name_and_says_where_it_applies() -> None:
    names = [name for where in ("param", "deploy", "local") for name in Settings.fields_for(where)]
    assert len(names) == len(set(names))
    assert {"LONGFORM_BUCKET", "POLL_SECONDS", "MAX_ACTIVE_JOBS", "SIGNED_URL_HOURS"} <= set(
        Settings.fields_for("param")
    )
    assert {"LONGFORM_REGION", "USER_CONCURRENCY", "MODEL_CONCURRENCY"} <= set(Settings.fields_for("deploy"))


def test_the_poll_settings_reach_the_pipeline_on_both_compositions(tmp_path: Path) -> None:
    from longform import bootstrap
    from longform.cloud.composition import Cloud
    from tests.fakes import InMemoryJobStore

    env = {"POLL_SECONDS": "2", "POLL_BUDGET_SECONDS": "120", "POLL_FLOOR_SECONDS": "1.5"}
    settings = Settings.from_env({**env, "VIDEO_MODEL": "preview", "STITCH_BACKEND": "ffmpeg"})
    local = bootstrap.local(settings.with_(data_dir=tmp_path / "data")).pipeline
    cloud = Cloud(settings.with_(local_dir=tmp_path / "bucket"), jobs=InMemoryJobStore()).pipeline
    for pipeline in (local, cloud):
        assert (pipeline.poll_seconds, pipeline.poll_budget_seconds, pipeline.poll_floor_seconds) == (2, 120, 1.5)
        assert pipeline.max_polls == 30  # an hour in steps of two minutes
    unset = Settings.from_env({"POLL_FLOOR_SECONDS": ""})
    assert (unset.poll_floor_seconds, unset.poll_seconds, unset.poll_budget_seconds) == (None, 5, 240)
