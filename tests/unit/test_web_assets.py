"""The web page's pins agree with each other, and its modules form a graph without cycles (no browser needed)."""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

from devtools.servers import ROOT
from longform.config import Settings
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
