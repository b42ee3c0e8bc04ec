"""``web/config.json``, the Firebase-mode page's settings, made from their one source: the region
and the playback links' lifetime from ``longform.config`` (LONGFORM_REGION, PLAYBACK_URL_MINUTES),
the emulator addresses from ``firebase.json``.

``make web`` writes it (``python -m devtools.web_config``); a test fails if the committed file
differs from what this makes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from longform.config import Settings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "web" / "config.json"
EMULATORS = ("auth", "firestore", "functions")


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


def main() -> int:
    CONFIG.write_text(render())
    print(f"wrote {CONFIG.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
