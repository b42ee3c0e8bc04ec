"""The web page's pins agree with each other, and its modules form a graph without cycles (no browser needed)."""

from __future__ import annotations

import itertools
import json
import posixpath
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.servers import ROOT
from longform.cli import _money
from longform.config import Settings
from longform.local_server import published_prices
from longform.prices import PRICES, Pricing, usd
from longform.request import VideoRequest
from tests.conftest import unavailable

WEB = ROOT / "web"

# The page's own relative imports: `import … from "./x.js"`, `export … from "./x.js"`,
# `import "./x.js"` and `import("./x.js")`. Bare names (firebase/…) go through the import map.
LOCAL_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}/[^"']+)["']""")


def local_imports(name: str, source: str) -> set[str]:
    """The modules (paths relative to web/) that the module `name` imports, statically or dynamically."""
    base = posixpath.dirname(name)
    return {posixpath.normpath(posixpath.join(base, target)) for target in LOCAL_IMPORT.findall(source)}


def import_graph() -> dict[str, set[str]]:
    return {module.name: local_imports(module.name, module.read_text()) for module in sorted(WEB.glob("*.js"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path a → … → a through the graph, or None when it has no cycle."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            if cycle := visit(target, [*path, node]):
                return cycle
        done.add(node)
        return None

    for node in sorted(graph):
        if cycle := visit(node, []):
            return cycle
    return None


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
    for module, targets in import_graph().items():
        for target in targets:
            assert (WEB / target).is_file(), f"{module} imports missing {target}"


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    assert graph["backend.js"] == {"backend-local.js", "backend-firebase.js"}  # the parse sees import()
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' → '.join(cycle)}"


def test_the_cycle_check_sees_static_dynamic_and_longer_cycles() -> None:
    dynamic = {
        "backend.js": local_imports("backend.js", 'const { f } = await import("./backend-local.js");'),
        "backend-local.js": local_imports("backend-local.js", 'import { CallError } from "./backend.js";'),
    }
    assert find_cycle(dynamic) == ["backend-local.js", "backend.js", "backend-local.js"]
    longer = {"a.js": {"b.js"}, "b.js": {"c.js"}, "c.js": {"a.js"}, "d.js": {"a.js"}}
    assert find_cycle(longer) == ["a.js", "b.js", "c.js", "a.js"]
    assert find_cycle({"a.js": {"b.js", "c.js"}, "b.js": {"c.js"}, "c.js": set()}) is None
    assert local_imports("x.js", "import './side-effect.js';\nexport { y } from \"./y.js\";") == {
        "side-effect.js",
        "y.js",
    }


def test_the_committed_page_config_is_what_make_web_writes() -> None:
    # The region comes from longform.config, the emulator addresses from firebase.json: one source each.
    from devtools.web_config import CONFIG, render

    assert CONFIG.read_text() == render(Settings()), "run `make web` (python -m devtools.web_config)"


# -- the prices the page estimates with (web/estimate.js over prices.json) ---------------------------------


def run_estimate_js(body: str, data: Any) -> Any:
    """Run ``body`` under node as an ES module with web/estimate.js's exports as ``page`` and
    ``data`` (as JSON); what it returns, as JSON."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    script = (
        f'import * as page from "{(WEB / "estimate.js").as_uri()}";\n'
        'import { readFileSync } from "node:fs";\n'
        'const data = JSON.parse(readFileSync(0, "utf8"));\n'
        f"const result = (() => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(result));\n"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script], input=json.dumps(data), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# A table unlike the embedded one: prices with more digits, and every Transcoder class apart.
ODD_TABLE = PRICES.merged(
    json.dumps(
        {
            "veo": {"veo-3.1-fast-generate-001": {"withAudio": 0.123457, "withoutAudio": 0.0999, "asOf": "2027-01-02"}},
            "transcoder": {"sd": 0.0151, "hd": 0.0317, "uhd": 0.0613},
            "function": {"vcpuSecond": 0.0000243, "gibSecond": 0.00000257, "vcpus": 4, "gib": 8},
        }
    )
)


def test_the_pages_estimate_is_pricing_estimate_to_the_millionth() -> None:
    cases = []
    for table, model, stitch in itertools.product(
        (PRICES, ODD_TABLE), ("veo-3.1-fast-generate-001", "veo-3.0-generate-001"), ("transcoder", "ffmpeg")
    ):
        pricing = Pricing(table, model, stitch, estimated=stitch == "ffmpeg")
        for scenes, seconds, audio, aspect, resolution in itertools.product(
            (1, 7, 50), (4, 6, 8), (True, False), ("16:9", "9:16"), ("720p", "1080p")
        ):
            wire = {"segmentSeconds": seconds, "aspectRatio": aspect, "resolution": resolution, "generateAudio": audio}
            request = VideoRequest.model_validate({"prompts": ["a scene"] * scenes, **wire})
            expected = pricing.estimate(request).estimate_usd
            cases.append({"prices": published_prices(pricing), "request": {**wire, "prompts": scenes}, "usd": expected})
    got = run_estimate_js(
        "return data.map(c => page.estimateUsd(c.prices, c.request)).map(usd => [usd, page.formatUsd(usd)]);",
        cases,
    )
    assert len(got) == len(cases) == 2 * 2 * 2 * 72
    for case, (amount, shown) in zip(cases, got, strict=True):
        assert (amount, shown) == (case["usd"], _money(case["usd"])), case  # the same float, the same cents
    assert len({c["usd"] for c in cases}) > 100  # the grid tells the prices, lengths and stitches apart


@pytest.mark.parametrize(
    "amount",
    [
        0.0,
        1.2,
        1.204,
        1.206,
        2.675,
        0.125,
        0.375,
        0.005,
        0.0049999,
        0.0078125,
        3 / 128,
        1.0000005,
        1234.565,
        1e-7,
        0.004,
    ],
)
def test_the_pages_rounding_is_pythons(amount: float) -> None:
    # Python rounds a tie to the even digit (0.0078125 → 0.007812, 0.125 → $0.12); toFixed does not.
    got = run_estimate_js("return [page.usd(data), page.formatUsd(data)];", amount)
    assert got == [usd(amount), _money(amount)]


def test_make_web_writes_the_functions_prices_in_the_shape_longform_serve_answers(tmp_path: Path) -> None:
    from devtools.web_config import price_settings, render_prices

    table = '{"veo": {"veo-3.1-generate-001": {"withAudio": 0.5, "asOf": "2027-02-03"}}}'
    settings = Settings(price_table=table, veo_model="veo-3.1-generate-001", stitch_backend="ffmpeg")
    published = json.loads(render_prices(settings))
    assert published == published_prices(Pricing(settings.prices, "veo-3.1-generate-001", "ffmpeg", estimated=False))
    assert (published["pricedAs"], published["stitch"], published["estimated"]) == (
        "veo-3.1-generate-001",
        "ffmpeg",
        False,
    )
    assert published["pricesAsOf"] == "2027-02-03"
    assert published["table"]["veo"]["veo-3.1-generate-001"] == {
        "withAudio": 0.5,
        "withoutAudio": 0.2,
        "asOf": "2027-02-03",
        "source": "https://cloud.google.com/vertex-ai/generative-ai/pricing",
    }
    assert json.loads(render_prices(Settings(video_model="preview")))["estimated"] is True  # nothing billed

    # The params where the functions read them: functions/.env, then .env.<project>, the environment over both.
    (tmp_path / ".env").write_text(
        "# prices\nSTITCH_BACKEND=ffmpeg  # in the function\nVEO_MODEL=veo-3.0-generate-001\n"
    )
    (tmp_path / ".env.my-project").write_text(f"PRICE_TABLE='{table}'\nVEO_MODEL=\"veo-3.1-generate-001\"\n")
    found = price_settings({"GCLOUD_PROJECT": "my-project"}, functions=tmp_path)
    assert (found.price_table, found.veo_model, found.stitch_backend) == (table, "veo-3.1-generate-001", "ffmpeg")
    other = price_settings({"GCLOUD_PROJECT": "other", "STITCH_BACKEND": "transcoder"}, functions=tmp_path)
    assert (other.price_table, other.veo_model, other.stitch_backend) == ("", "veo-3.0-generate-001", "transcoder")


# -- Firebase mode: what backend-firebase.js imports from the SDK ----------------------------------------

FAKE_SDK = ROOT / "tests" / "browser" / "fake_firebase"  # the browser tests' stand-in SDK
# `import { a, b as c } from "firebase/auth"`: the names the page takes from each SDK module.
SDK_IMPORT = re.compile(r"""import\s*\{([^}]*)\}\s*from\s*["']firebase/(\w+)["']""")
# The SDK's browser builds end with `export { x as y, z }`; the fakes declare what they export.
EXPORT_LIST = re.compile(r"export\s*\{([^}]*)\}")
EXPORT_DECLARED = re.compile(r"export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+(\w+)")


def sdk_imports(source: str) -> dict[str, set[str]]:
    """{"auth": {"getAuth", …}, …}: what a module imports from each firebase/* module."""
    imports: dict[str, set[str]] = {}
    for names, module in SDK_IMPORT.findall(source):
        imports.setdefault(module, set()).update(n.split(" as ")[0].strip() for n in names.split(",") if n.strip())
    return imports


def exported_names(source: str) -> set[str]:
    names = set(EXPORT_DECLARED.findall(source))
    for listed in EXPORT_LIST.findall(source):
        names.update(n.split(" as ")[-1].strip() for n in listed.split(",") if n.strip())
    return names


def missing_exports(sdk_dir: Path) -> dict[str, set[str]]:
    """What backend-firebase.js imports that the modules in sdk_dir (firebase-<m>.js) do not export."""
    wanted = sdk_imports((WEB / "backend-firebase.js").read_text())
    missing = {m: names - exported_names((sdk_dir / f"firebase-{m}.js").read_text()) for m, names in wanted.items()}
    return {m: names for m, names in missing.items() if names}


def test_firebase_mode_imports_only_what_the_import_map_resolves() -> None:
    html = (WEB / "index.html").read_text()
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S)[1])["imports"]  # type: ignore[index]
    wanted = sdk_imports((WEB / "backend-firebase.js").read_text())
    assert {"app", "auth", "firestore", "functions"} >= set(wanted) and "auth" in wanted
    assert {f"firebase/{m}" for m in wanted} <= set(imports)
    assert "signInAnonymously" not in wanted["auth"]  # anonymous accounts may not start jobs
    assert {"GoogleAuthProvider", "signInWithPopup", "signInWithEmailAndPassword", "signOut"} <= wanted["auth"]


def test_the_browser_tests_stand_in_sdk_exports_what_firebase_mode_imports() -> None:
    assert missing_exports(FAKE_SDK) == {}


def test_the_vendored_sdk_exports_what_firebase_mode_imports() -> None:
    # The real modules, where `make web` put them (vendor/) or npm installed them (node_modules/).
    found = [
        d
        for d in (WEB / "vendor" / "firebase", WEB / "node_modules" / "firebase")
        if (d / "firebase-auth.js").is_file()
    ]
    if not found:
        unavailable("the Firebase SDK is not installed here (make web vendors it; make test does with npm)")
    assert missing_exports(found[0]) == {}


def test_the_export_parse_reads_the_sdks_export_lists() -> None:
    assert exported_names("x;export{a as getAuth,signOut,b as GoogleAuthProvider};") == {
        "getAuth",
        "signOut",
        "GoogleAuthProvider",
    }
    assert exported_names(
        "export async function signOut() {}\nexport class GoogleAuthProvider {}\nexport const where = 1;"
    ) == {
        "signOut",
        "GoogleAuthProvider",
        "where",
    }
    assert sdk_imports('import {\n  a,\n  b as c,\n} from "firebase/auth";\nimport { d } from "firebase/app";') == {
        "auth": {"a", "b"},
        "app": {"d"},
    }
