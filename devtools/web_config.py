"""What ``make web`` writes for the Firebase-mode page, each from its one source:

- ``web/config.json``, the page's settings: the region and the playback links' lifetime from
  ``longform.config`` (LONGFORM_REGION, PLAYBACK_URL_MINUTES), the emulator addresses from
  ``firebase.json``; committed, and a test fails if it differs from what this makes.
- ``web/prices.json``, the prices the page estimates with: the deployed functions' own pricing
  (``Cloud(settings).pricing``: the table in prices.py with PRICE_TABLE laid over it, VEO_MODEL,
  STITCH_BACKEND, VIDEO_MODEL) in the shape ``longform serve`` answers at /prices.json
  (``local_server.published_prices``). Those are params, so they are read where the functions read
  them, ``functions/.env`` and ``functions/.env.<project>``, with the environment over them.
  Generated (gitignored): ``make web`` writes it every time, and Hosting's predeploy runs it.

``python -m devtools.web_config`` writes both.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from longform.cloud.composition import Cloud
from longform.config import Settings
from longform.local_server import published_prices

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "web" / "config.json"
PRICES = ROOT / "web" / "prices.json"
FUNCTIONS = ROOT / "functions"
EMULATORS = ("auth", "firestore", "functions")
PRICE_SETTINGS = {"price_table", "veo_model", "stitch_backend", "video_model"}


def render(settings: Settings | None = None) -> str:
    emulators = json.loads((ROOT / "firebase.json").read_text())["emulators"]
    settings = settings or Settings.from_env(only={"region", "playback_url_minutes", "app_check_site_key"})
    config = {
        "mode": "firebase",
        "region": settings.region,
        "playbackUrlMinutes": settings.playback_url_minutes,  # how long get_playback_urls' links live
        **({"appCheckSiteKey": settings.app_check_site_key} if settings.app_check_site_key else {}),
        "emulators": {
            name: f"{emulators[name].get('host', '127.0.0.1')}:{emulators[name]['port']}" for name in EMULATORS
        },
    }
    return json.dumps(config, indent=2) + "\n"


def render_prices(settings: Settings | None = None) -> str:
    """web/prices.json for ``settings`` (default: the deployed functions' price settings)."""
    settings = settings or price_settings()
    return json.dumps(published_prices(Cloud(settings).pricing), indent=2) + "\n"


def price_settings(env: Mapping[str, str] | None = None, functions: Path = FUNCTIONS) -> Settings:
    """The price settings as the deployed functions get them: ``functions/.env``, then
    ``functions/.env.<project>`` (the project Firebase's predeploy hook names in GCLOUD_PROJECT),
    then the environment over both."""
    env = os.environ if env is None else env
    project = Settings.from_env(env, only={"project"}).project
    values: dict[str, str] = {}
    for name in (".env", f".env.{project}"):
        if (functions / name).is_file():
            values.update(parse_dotenv((functions / name).read_text()))
    values.update({key: value for key, value in env.items() if value})
    return Settings.from_env(values, only=PRICE_SETTINGS)


_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=value`` lines as Firebase reads a functions .env file: ``#`` comments, a value in
    single quotes as it is (JSON such as a PRICE_TABLE), in double quotes with ``\\n`` and ``\\"``
    escapes, a bare value up to a `` #`` comment. One line a value."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        elif len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def main() -> int:
    CONFIG.write_text(render())
    PRICES.write_text(render_prices())
    for path in (CONFIG, PRICES):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
