"""The sandbox is a distribution of its own: it imports nothing of psabridge, runs without it, has no import loops."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import psabridge_sandbox

PACKAGE = Path(psabridge_sandbox.__file__).resolve().parent
NAME = "psabridge_sandbox"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (inside functions and under ``if TYPE_CHECKING:`` too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {(NAME if p.stem == "__init__" else f"{NAME}.{p.stem}"): p for p in sorted(PACKAGE.glob("*.py"))}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_module_of_the_sandbox_imports_psabridge() -> None:
    offenders = {
        path.name: sorted(m for m in _imports(path) if m.split(".")[0] == "psabridge")
        for path in sorted(PACKAGE.glob("*.py"))
    }
    assert len(offenders) >= 40  # every simulator module was looked at
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_sandbox_has_no_import_loops() -> None:
    """No module reaches itself through the modules it imports (counting TYPE_CHECKING and deferred imports)."""
    graph = _graph()
    loops = []
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            module = todo.pop()
            if module == start:
                loops.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
    assert graph["psabridge_sandbox.registry"] >= {"psabridge_sandbox.tickets", "psabridge_sandbox.world"}
    assert loops == []


def test_the_sandbox_runs_with_psabridge_unimportable(tmp_path: Path) -> None:
    """Every simulator answers and --config-out writes its file in a process that cannot import psabridge."""
    script = f"""
import json, pathlib, sys
sys.modules["psabridge"] = None  # any import of psabridge now fails
import httpx
from psabridge_sandbox.configout import write_config
from psabridge_sandbox.runner import SandboxRunner

with SandboxRunner(port_base=0, tickets=3) as sandbox, httpx.Client(timeout=10) as client:
    answers = {{name: client.get(info.url + "/_sandbox/state").json()["service"]
               for name, info in sandbox.infos.items() if info.running}}
    path = write_config(pathlib.Path({str(tmp_path)!r}) / "psabridge.yaml", sandbox.infos, world=sandbox.world,
                        host="127.0.0.1")
print(json.dumps({{"answers": answers, "config": path.name,
                  "psabridge": sorted(m for m in sys.modules if m.split(".")[0] == "psabridge" and sys.modules[m])}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    services = ["connectwise", "autotask", "servicenow", "freshservice", "pagerduty", "opsgenie", "chat"]
    assert report == {"answers": {name: name for name in services}, "config": "psabridge.yaml", "psabridge": []}
    assert "mapping: builtin:servicenow" in (tmp_path / "psabridge.yaml").read_text()
