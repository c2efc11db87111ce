"""psabridge stands without the vendor sandbox: nothing imports it on import, and the commands that need it say so."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import psabridge.cli
from psabridge.cli import app
from psabridge.cli.common import SANDBOX_INSTALL_HINT

ROOT = Path(__file__).resolve().parents[1]
CLI_MODULES = sorted(f"psabridge.cli.{m.name}" for m in pkgutil.iter_modules(psabridge.cli.__path__))


def _module_level_imports(tree: ast.Module) -> list[str]:
    """Modules imported when the module is imported: not inside functions, nor under ``if TYPE_CHECKING:``."""
    found: list[str] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append(node.module)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try | ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return found


def test_no_psabridge_module_imports_the_sandbox_at_import_time() -> None:
    offenders = {
        str(path.relative_to(ROOT)): name
        for path in sorted((ROOT / "src" / "psabridge").rglob("*.py"))
        for name in _module_level_imports(ast.parse(path.read_text(encoding="utf-8")))
        if name.split(".")[0] == "psabridge_sandbox"
    }
    assert offenders == {}


def test_importing_psabridge_and_every_cli_module_loads_nothing_of_the_sandbox() -> None:
    modules = ["psabridge", "psabridge.cli", "psabridge.demo", *CLI_MODULES]
    assert {"psabridge.cli.sandbox_cmd", "psabridge.cli.demo_cmd"} <= set(modules)
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'psabridge_sandbox')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(("args", "command"), [(["sandbox", "serve"], "sandbox serve"), (["demo"], "demo")])
def test_without_the_sandbox_the_commands_that_need_it_say_how_to_install_it(
    args: list[str], command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m.split(".")[0] == "psabridge_sandbox"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psabridge_sandbox", None)  # import psabridge_sandbox -> ModuleNotFoundError
    result = CliRunner().invoke(app, [*args, "--port-base" if command == "sandbox serve" else "--folder", "0"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"error: `psabridge {command}` needs the vendor sandbox, not installed here: {SANDBOX_INSTALL_HINT}"
    ]
    assert "pip install packages/psabridge-sandbox" in SANDBOX_INSTALL_HINT


def test_the_cli_help_names_the_sandbox_defaults_it_cannot_import() -> None:
    from psabridge.cli import sandbox_cmd
    from psabridge_sandbox.faults import PROFILES
    from psabridge_sandbox.registry import DEFAULT_PORT_BASE

    assert (tuple(PROFILES), DEFAULT_PORT_BASE) == (sandbox_cmd.FAULT_PROFILES, sandbox_cmd.DEFAULT_PORT_BASE)


def test_psabridge_does_not_depend_on_the_sandbox() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not [d for d in project["dependencies"] if "sandbox" in d]
