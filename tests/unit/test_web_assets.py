"""The web page's pins agree with each other (no browser needed)."""

from __future__ import annotations

import json
import re

from devtools.servers import ROOT

WEB = ROOT / "web"


def test_import_map_points_the_sdks_own_gstatic_import_at_the_locked_version() -> None:
    # The SDK's browser modules import firebase-app from gstatic by URL; the import map must name
    # exactly that URL, so it has to change with the locked version.
    locked = json.loads((WEB / "package-lock.json").read_text())["packages"]["node_modules/firebase"]["version"]
    assert json.loads((WEB / "package.json").read_text())["dependencies"]["firebase"] == locked
    html = (WEB / "index.html").read_text()
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S)[1])["imports"]  # type: ignore[index]
    assert (
        imports[f"https://www.gstatic.com/firebasejs/{locked}/firebase-app.js"] == "./vendor/firebase/firebase-app.js"
    )
    modules = {name.removeprefix("firebase/") for name in imports if name.startswith("firebase/")}
    makefile = (ROOT / "Makefile").read_text()
    assert f"FIREBASE_MODULES := {' '.join(sorted(modules))}" in makefile


def test_every_module_the_page_imports_exists() -> None:
    for module in WEB.glob("*.js"):
        for name in re.findall(r'from "(\./[^"]+)"|import\("(\./[^"]+)"\)', module.read_text()):
            target = next(n for n in name if n)
            assert (WEB / target).is_file(), f"{module.name} imports missing {target}"
