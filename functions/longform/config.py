"""Every setting of Longform, in one model: read from the environment once, validated, frozen.

Each field has one environment name (its alias) and says where it applies:

- ``param``: a Firebase param of the deployed functions (``functions/.env.<project>``, or asked
  by ``firebase deploy``); ``cloud/params.py`` declares them from this model, and the functions
  read them at run time through ``Settings.from_env()``.
- ``deploy``: fixed when ``firebase deploy`` discovers the functions (region, flow control).
- ``local``: the embedded pipeline (the CLI and ``longform serve``).

A bad value raises InvalidSetting naming the variable and the rule. The defaults run offline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from .errors import InvalidSetting
from .prices import PRICES, PriceTable
from .rules import rule_of

DEMO_PROJECT = "demo-longform"  # .firebaserc's project: the emulators and local mode; never a real one
DEFAULT_REGION = "us-central1"
JOBS_COLLECTION = "videoJobs"
_TOPIC_ID = re.compile(r"[A-Za-z][A-Za-z0-9._~+%-]{2,254}")


def _setting(default: Any, env: str | tuple[str, ...], where: str, about: str, **rules: Any) -> Any:
    names = (env,) if isinstance(env, str) else env
    return Field(
        default,
        validation_alias=AliasChoices(*names),
        description=about,
        json_schema_extra={"env": names[0], "where": where},
        **rules,
    )


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)

    # -- where -------------------------------------------------------------------------------------
    project: str = _setting(DEMO_PROJECT, ("GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT"), "deploy", "the project id")
    region: str = _setting(DEFAULT_REGION, "LONGFORM_REGION", "deploy", "the functions' region", min_length=1)

    # -- the embedded pipeline ----------------------------------------------------------------------
    data_dir: Path = _setting(Path(".longform"), "LONGFORM_DATA_DIR", "local", "where local jobs and files live")
    concurrency: int = _setting(4, "LONGFORM_CONCURRENCY", "local", "scenes made at once when chain=false", ge=1)
    retry_attempts: int = _setting(10, "LONGFORM_RETRY_ATTEMPTS", "local", "tries per step, the first included", ge=1)
    retry_base_seconds: float = _setting(
        1.0, "LONGFORM_RETRY_BASE_SECONDS", "local", "first backoff; doubles per attempt, with jitter", ge=0
    )
    max_running_jobs: int = _setting(
        2, "LONGFORM_MAX_RUNNING_JOBS", "local", "jobs run at once by longform serve; later ones wait", ge=1
    )
    lease_seconds: float = _setting(
        30.0,
        "LONGFORM_LEASE_SECONDS",
        "local",
        "how long a killed run holds its job before it counts as interrupted",
        gt=0,
    )
    retry_max_seconds: float = Field(60.0, ge=0)
    # A Veo operation (or an in-function stitch) still running after this fails its scene (its job).
    max_wait_seconds: float = Field(3600.0, gt=0)

    # -- Firebase params: the deployed functions ------------------------------------------------------
    bucket: str = _setting("", "LONGFORM_BUCKET", "param", "Cloud Storage bucket for segments and videos")
    local_dir: Path | None = _setting(
        None, "LONGFORM_LOCAL_DIR", "param", "a local folder used instead of a bucket (emulators, tests)"
    )
    video_model: Literal["veo", "preview"] = _setting(
        "veo", "VIDEO_MODEL", "param", "veo, or preview (the offline renderer)"
    )
    price_table: str = _setting(
        "", "PRICE_TABLE", "param", "JSON laid over the embedded price table (prices.py), e.g. a changed Veo price"
    )
    veo_model: str = _setting(
        "veo-3.1-fast-generate-001", "VEO_MODEL", "param", "the Veo model id", pattern=r"^veo-[a-z0-9.-]+$"
    )
    vertex_location: str = _setting(DEFAULT_REGION, "VERTEX_LOCATION", "param", "Vertex AI region for Veo")
    vertex_base_url: str = _setting(
        "", "VERTEX_BASE_URL", "param", "Vertex AI endpoint (empty: the region's public endpoint)"
    )
    stitch_backend: Literal["transcoder", "ffmpeg"] = _setting(
        "transcoder", "STITCH_BACKEND", "param", "transcoder, or ffmpeg (PyAV stream copy in the function)"
    )
    transcoder_location: str = _setting(DEFAULT_REGION, "TRANSCODER_LOCATION", "param", "Transcoder API region")
    transcoder_endpoint: str = _setting(
        "", "TRANSCODER_ENDPOINT", "param", "Transcoder API endpoint (empty: the public one)"
    )
    # Read when deploy discovers the functions: it names the topic the Pub/Sub function listens on.
    transcoder_topic: str = _setting(
        "",
        "TRANSCODER_TOPIC",
        "deploy",
        "Pub/Sub topic id the Transcoder publishes its jobs' end to (empty: no notice, the poller alone)",
    )
    # V4 signed URLs live at most 7 days.
    signed_url_hours: int = _setting(
        72, "SIGNED_URL_HOURS", "param", "lifetime of the final video's signed URL (1 to 168)", ge=1, le=168
    )
    max_active_jobs: int = _setting(3, "MAX_ACTIVE_JOBS", "param", "unfinished jobs allowed per user", ge=1)
    user_seconds_per_day: int = _setting(
        600,
        "USER_SECONDS_PER_DAY",
        "param",
        "video seconds a user may start a day (a videoSecondsPerDay claim overrides)",
        ge=0,
    )
    project_seconds_per_day: int = _setting(
        3600, "PROJECT_SECONDS_PER_DAY", "param", "video seconds all users together may start a day", ge=0
    )
    playback_url_minutes: int = _setting(
        60,
        "PLAYBACK_URL_MINUTES",
        "param",
        "lifetime of the links get_playback_urls gives (1 to 10080)",
        ge=1,
        le=10080,
    )
    scene_retention_days: int = _setting(
        30, "SCENE_RETENTION_DAYS", "param", "days a finished job keeps its segments and frames", ge=1
    )
    video_retention_days: int = _setting(
        0, "VIDEO_RETENTION_DAYS", "param", "days a finished job keeps its final video (0: for good)", ge=0
    )
    allow_anonymous: bool = _setting(
        False, "ALLOW_ANONYMOUS", "param", "whether anonymous Firebase Auth accounts may start jobs"
    )
    poll_seconds: float = _setting(
        5.0,
        "POLL_SECONDS",
        "param",
        "seconds between polls of a Veo operation or an in-function stitch, inside one poll step (0 to 60)",
        ge=0,
        le=60,
    )
    # One poll step waits this long at most, then hands back to Inngest, which runs the next one at
    # once: well under the inngest_api function's timeout (1800 s), with room for the last poll.
    poll_budget_seconds: int = _setting(
        240,
        "POLL_BUDGET_SECONDS",
        "param",
        "how long one poll step polls before it hands back to the durable loop (1 to 900)",
        ge=1,
        le=900,
    )
    poll_floor_seconds: float | None = _setting(
        None,
        "POLL_FLOOR_SECONDS",
        "param",
        "no poll of a new operation sooner than this (empty: the model's own, 30 s for Veo; lower for a stand-in)",
        ge=0,
        le=900,
    )
    # The poller's lease is its budget + 60 s, within the trigger's 540 s timeout.
    stitch_poll_budget_seconds: int = _setting(
        300,
        "STITCH_POLL_BUDGET_SECONDS",
        "param",
        "how long one poller invocation waits on a Transcoder job (1 to 480)",
        ge=1,
        le=480,
    )
    stitch_max_poll_attempts: int = _setting(
        6, "STITCH_MAX_POLL_ATTEMPTS", "param", "poller invocations before a stitch is declared timed out", ge=1
    )
    # With TRANSCODER_TOPIC the Pub/Sub message ends the job; the poller is the safety net behind it.
    stitch_safety_net_seconds: int = _setting(
        120,
        "STITCH_SAFETY_NET_SECONDS",
        "param",
        "with TRANSCODER_TOPIC: seconds after the stitch started before the poller first polls (0 to 480)",
        ge=0,
        le=480,
    )
    inngest_serve_origin: str = _setting(
        "",
        "INNGEST_SERVE_ORIGIN",
        "param",
        "the origin Inngest calls, e.g. https://REGION-PROJECT.cloudfunctions.net (empty: the request's)",
    )
    inngest_serve_path: str = _setting(
        "", "INNGEST_SERVE_PATH", "param", "the path Inngest calls, e.g. /inngest_api (empty: the request's)"
    )

    # -- fixed at deploy: who may call, Inngest flow control ----------------------------------------------
    enforce_app_check: bool = _setting(
        True, "ENFORCE_APP_CHECK", "deploy", "refuse callable requests without a valid App Check token"
    )
    app_check_site_key: str = _setting(
        "", "APP_CHECK_SITE_KEY", "deploy", "the web app's reCAPTCHA Enterprise site key for App Check (make web)"
    )
    app_check_jwks_url: str = _setting(
        "", "APP_CHECK_JWKS_URL", "deploy", "where App Check's signing keys are read (tests only; empty: Google's)"
    )
    # Inngest counts steps executing at once (a sleeping run holds no slot; a poll step holds one
    # while it waits for Veo, up to POLL_BUDGET_SECONDS); the per-user limit also caps how many
    # unchained segments of one job are in flight together.
    user_concurrency: int = _setting(2, "USER_CONCURRENCY", "deploy", "steps at once per user", ge=1)
    model_concurrency: int = _setting(10, "MODEL_CONCURRENCY", "deploy", "steps at once, all users: Veo's quota", ge=1)

    @field_validator("price_table")
    @classmethod
    def _a_price_table(cls, value: str) -> str:
        if value:
            PRICES.merged(value)  # raises, naming what is wrong
        return value

    @field_validator("transcoder_topic")
    @classmethod
    def _a_topic_id(cls, value: str) -> str:
        # Pub/Sub's rule for a topic id (projects/{project}/topics/{topic}).
        if value and (not _TOPIC_ID.fullmatch(value) or value.startswith("goog")):
            raise ValueError(
                "must be a Pub/Sub topic id: 3 to 255 letters, digits or - _ . ~ + %, starting with a letter, "
                "not with goog"
            )
        return value

    @field_validator("veo_model")
    @classmethod
    def _a_priced_model(cls, value: str, info: ValidationInfo) -> str:
        table = _table(info.data.get("price_table", ""))
        if value not in table.veo:
            raise ValueError(f"has no price (priced: {', '.join(sorted(table.veo))}); add it to PRICE_TABLE")
        return value

    @property
    def prices(self) -> PriceTable:
        return _table(self.price_table)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, only: Iterable[str] | None = None) -> Settings:
        """The settings the environment gives (empty values count as unset); ``only`` reads just
        those fields and leaves the rest at their defaults."""
        env = os.environ if env is None else env
        values: dict[str, str] = {}
        for name in cls.model_fields:
            if only is not None and name not in only:
                continue
            for alias in env_names(name):
                if env.get(alias):
                    values[alias] = env[alias]
                    break
        return cls._validated(values)

    def with_(self, **changes: Any) -> Settings:
        """A copy with these fields changed, validated like the environment's values. The fields
        set explicitly stay those of this one plus the changed ones (``model_fields_set``)."""
        changed = type(self)._validated({**self.model_dump(), **changes})
        object.__setattr__(changed, "__pydantic_fields_set__", self.model_fields_set | set(changes))
        return changed

    @classmethod
    def _validated(cls, values: Mapping[str, Any]) -> Settings:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise InvalidSetting(_env_name_of(err["loc"]), _rule(err), err.get("input")) from None

    @classmethod
    def fields_for(cls, where: str, by: str = "env") -> dict[str, Any]:
        """The fields that apply ``where`` (``param``, ``deploy``, ``local``), keyed by their
        environment name (``by="env"``) or their field name (``by="field"``)."""
        return {
            _extra(field)["env"] if by == "env" else name: field
            for name, field in cls.model_fields.items()
            if isinstance(field.json_schema_extra, dict) and _extra(field)["where"] == where
        }

    @property
    def db_path(self) -> Path:
        return self.data_dir / "longform.db"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def _table(override: str) -> PriceTable:
    return PRICES.merged(override) if override else PRICES


def env_names(field: str) -> tuple[str, ...]:
    """The environment names of a field, the first being the one to use."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return ()


def _extra(field: Any) -> dict[str, str]:
    return field.json_schema_extra  # type: ignore[no-any-return]


def _env_name_of(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "settings"
    if name in Settings.model_fields:
        names = env_names(name)
        return names[0] if names else name
    return name


_WORDING = {
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
}


def _rule(err: Any) -> str:
    return rule_of(err, _WORDING)
