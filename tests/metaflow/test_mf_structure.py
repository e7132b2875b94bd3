"""Structural checks of the python/ package: no gi at import time, discovery."""

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import EXTENSION_DIR, PYTHON

PACKAGE = EXTENSION_DIR / "metaflow_extensions"


def _modules():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files, f"no modules under {PACKAGE}"
    return files


def _top_level_imports(tree: ast.Module):
    """Import statements that run at import time (module body, incl. if/try blocks)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.ClassDef):
            stack.extend(node.body)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                stack.append(child)
            elif isinstance(child, ast.excepthandler):
                stack.extend(child.body)


def test_no_gi_import_at_module_level():
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in _top_level_imports(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            if any(n == "gi" or n.startswith("gi.") for n in names):
                offenders.append("%s:%d" % (path.relative_to(EXTENSION_DIR), node.lineno))
    assert offenders == [], f"gi imported at module level: {offenders}"


def test_namespace_package_layout():
    # Metaflow rejects a metaflow_extensions/__init__.py (implicit namespace package).
    assert not (PACKAGE / "__init__.py").exists()
    assert (PACKAGE / "libsandbox" / "plugins" / "mfextinit_libsandbox.py").exists()
    assert (PACKAGE / "libsandbox" / "config" / "mfextinit_libsandbox.py").exists()


def _probe(env, pythonpath: str) -> dict:
    script = r"""
import json, sys
sys.modules['gi'] = None  # PyGObject absent, as inside a sandbox
import metaflow
from metaflow import sandbox, daytona, e2b
from metaflow.plugins import STEP_DECORATORS
from metaflow import metaflow_config
import metaflow_extensions.libsandbox.plugins.sandbox_cli as cli
import metaflow_extensions.libsandbox.plugins.sandbox_executor
import metaflow_extensions.libsandbox.plugins.sandbox_admin
import metaflow_extensions.libsandbox.plugins.sandbox_runner
import metaflow_extensions.libsandbox.plugins.sandbox_remote
import metaflow_extensions.libsandbox.plugins.sandbox_decorator as deco
print(json.dumps({
    "decorators": sorted(d.name for d in STEP_DECORATORS),
    "backend": metaflow_config.SANDBOX_BACKEND,
    "cli": sorted(cli.cli.commands),
    "step": sorted(cli.cli.commands["sandbox"].commands),
    "file": deco.__file__,
    "alias_init": [
        "init" in c.__dict__
        for c in (deco.SandboxDecorator, deco.DaytonaDecorator, deco.E2BDecorator)
    ],
}))
"""
    env = dict(env, PYTHONPATH=pythonpath)
    env.pop("METAFLOW_SANDBOX_BACKEND", None)
    out = subprocess.run(
        [PYTHON, "-c", script],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def test_plugins_load_without_gi_from_pythonpath(mf):
    info = _probe(mf.env, str(EXTENSION_DIR))
    assert {"sandbox", "daytona", "e2b"} <= set(info["decorators"])
    assert info["backend"] == "local"
    assert info["cli"] == ["sandbox"] and info["step"] == ["kill", "list", "step"]
    assert info["alias_init"] == [True, True, True]
    assert Path(info["file"]).resolve().is_relative_to(EXTENSION_DIR)


def test_setuptools_install_is_discovered(mf, tmp_path):
    # Build from a copy: pip builds in-tree and the source tree may be read-only.
    src = tmp_path / "src"
    shutil.copytree(EXTENSION_DIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site"
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(src),
        ],
        env=mf.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout.decode()[-3000:]
    top_level = list(target.glob("*.dist-info/top_level.txt"))
    assert top_level and "metaflow_extensions" in top_level[0].read_text().split()
    info = _probe(mf.env, str(target))
    assert {"sandbox", "daytona", "e2b"} <= set(info["decorators"])
    assert Path(info["file"]).resolve().is_relative_to(target.resolve())


_HIDDEN_PATHS_CHECK = """
import os, sys
from pathlib import Path

tmp = Path(sys.argv[1])
from metaflow_extensions.libsandbox.plugins import sandbox_executor as ex

home = tmp / "home"
(home / "env" / "lib" / "site").mkdir(parents=True)
(tmp / "link").symlink_to(home / "env")
(tmp / "elsewhere").mkdir()
ex._LOCAL_PRIVATE_DIRS = (str(home),)
os.environ["PYTHONPATH"] = str(tmp / "link" / "lib")
site = home / "env" / "lib" / "site"
sys.path[:] = ["", str(site), str(tmp / "link"), str(tmp / "elsewhere")]
found = ex._hidden_python_paths(exclude=[])
assert found == [str(home / "env")], found
# env holds a mount of the task: not env, but what under it does not.
mount = str(tmp / "link" / "lib" / "x")
assert ex._hidden_python_paths(exclude=[mount]) == [str(site)]
print("checked")
"""


def test_hidden_python_paths(tmp_path):
    """The import paths a local sandbox hides are found once each, resolved
    (a link to one is the same path), nested ones folded into the outer one,
    and none that holds one of the task's own mounts. In its own Python, with
    the extension from the source tree on PYTHONPATH as the flows have it
    (Metaflow reads its extensions' configuration when first imported)."""
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_DIR))
    out = subprocess.run(
        [PYTHON, "-c", _HIDDEN_PATHS_CHECK, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "checked"


_NO_GI_CHECK = """
import json, sys
from metaflow_extensions.libsandbox.plugins import sandbox_executor as e
e.preflight("local")
answer = {
    "caps": sorted(e.backend_capabilities("local")),
    "workdir": e.backend_default_workdir("local"),
    "direct": e._sandboxctl_can_create("local"),
    "gi": "gi.repository.Sandbox" in sys.modules,
}
if sys.argv[1] == "gi":
    # The library's own answers, through gi.
    e._CAPABILITIES.clear()
    e._DEFAULT_WORKDIRS.clear()
    from gi.repository import Sandbox  # noqa: F401
    answer["caps"] = sorted(e.backend_capabilities("local"))
    answer["workdir"] = e.backend_default_workdir("local")
    answer["direct"] = e._sandboxctl_can_create("local")
print(json.dumps(answer))
"""


def test_preflight_without_gi():
    """The runtime of a local run does not load the library through gi
    (issue 14, row 3a: ~80 ms a run) to check the backend and read its
    capabilities and default workdir: sandboxctl answers, and its answers
    are the library's. (PyGObject itself is imported, to check it is there.)"""
    if not (os.environ.get("SANDBOXCTL") or shutil.which("sandboxctl")):
        import pytest

        pytest.skip("needs sandboxctl ($SANDBOXCTL or on PATH)")
    env = dict(os.environ, PYTHONPATH=str(EXTENSION_DIR))
    answers = []
    for mode in ("sandboxctl", "gi"):
        out = subprocess.run(
            [PYTHON, "-c", _NO_GI_CHECK, mode], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        answers.append(json.loads(out.stdout.strip().splitlines()[-1]))
    without, with_gi = answers
    assert without["gi"] is False, "the preflight loaded gi.repository.Sandbox"
    assert "SHARES_HOST_FS" in without["caps"] and "MOUNTS" in without["caps"], without
    assert without["workdir"] == "/workspace", without
    assert without["direct"] is True
    for key in ("caps", "workdir", "direct"):
        assert without[key] == with_gi[key], (key, without, with_gi)
