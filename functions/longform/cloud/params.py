"""What ``firebase deploy`` learns about the configuration: the Firebase params and secrets.

The params are declared from ``config.Settings`` (its ``param`` fields: name, default, meaning),
so a setting is defined once; the functions read and validate them at run time through
``Settings.from_env()``. ``DEPLOY`` holds the settings fixed when deploy discovers the functions
(the region); it is read at import and checked like the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firebase_functions import params

from ..config import Settings

DEPLOY = Settings.from_env(only=set(Settings.fields_for("deploy", by="field")))


def _declare(name: str, field: Any) -> params.Param[Any]:
    default = field.default
    if field.annotation is int:
        return params.IntParam(name, default=default, description=field.description)
    if field.annotation is bool:
        return params.BoolParam(name, default=default, description=field.description)
    text = "" if default is None else str(default) if not isinstance(default, Path) else default.as_posix()
    return params.StringParam(name, default=text, description=field.description)


PARAMS = {name: _declare(name, field) for name, field in Settings.fields_for("param").items()}

INNGEST_SIGNING_KEY = params.SecretParam("INNGEST_SIGNING_KEY")
INNGEST_EVENT_KEY = params.SecretParam("INNGEST_EVENT_KEY")
