#!/usr/bin/env python3
"""Set up a local virtual environment on demand and run one project task in it.

Usage: python3 run.py demo | test | lint | psabridge ARGS... | bench NAME | chaos [--short|--long]

Only python3 is needed: the first run creates .venv/ and installs both distributions of this repository, editable:
psabridge with its dev extra, and the vendor sandbox (packages/psabridge-sandbox) that the demo and the tests run
against. Later runs reuse .venv and reinstall only when a pyproject.toml changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".psabridge-installed"
SANDBOX = ROOT / "packages" / "psabridge-sandbox"
PROJECTS = (ROOT, SANDBOX)  # installed by one pip command; psabridge's dev extra brings the test and lint tools
LINTED = ("src", "packages", "tests", "scripts", "chaos", "run.py")


def _run(*args: str | os.PathLike[str]) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT)  # noqa: S603 - our own venv's tools


def ensure_venv() -> None:
    """Create .venv and install both distributions (editable; psabridge with its dev extra) unless up to date."""
    want = hashlib.sha256(b"".join((project / "pyproject.toml").read_bytes() for project in PROJECTS)).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text().strip() == want:
        return
    if not PY.exists():
        print("run.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    print("run.py: installing psabridge, psabridge-sandbox and their dependencies into .venv", flush=True)
    if _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip") != 0:
        sys.exit("run.py: could not upgrade pip in .venv")
    if _run(PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]", "-e", SANDBOX) != 0:
        sys.exit("run.py: pip install failed (see above)")
    STAMP.write_text(want)


def task_test(args: list[str]) -> int:
    """Lint, type-check and run the whole test suite."""
    for step in (
        [PY, "-m", "ruff", "check", *LINTED],
        [PY, "-m", "mypy"],
    ):
        print("run.py:", " ".join(str(s) for s in step[2:]), flush=True)
        if _run(*step) != 0:
            return 1
    return _run(PY, "-m", "pytest", *args)


def task_lint(args: list[str]) -> int:
    """Ruff (check and format check) and mypy only."""
    rc = _run(PY, "-m", "ruff", "check", *LINTED, *args)
    return rc or _run(PY, "-m", "mypy")


def task_demo(args: list[str]) -> int:
    """The main job on the embedded default: sandbox + bridge + workers in one process."""
    return _run(BIN / "psabridge", "demo", *args)


def task_psabridge(args: list[str]) -> int:
    """Any psabridge command inside the virtual environment."""
    return _run(BIN / "psabridge", *args)


def task_bench(args: list[str]) -> int:
    """A benchmark script from scripts/ (e.g. `bench connectors`)."""
    if not args:
        print("run.py bench NAME: one of", ", ".join(p.stem[6:] for p in sorted((ROOT / "scripts").glob("bench_*.py"))))
        return 2
    return _run(PY, ROOT / "scripts" / f"bench_{args[0]}.py", *args[1:])


def task_chaos(args: list[str]) -> int:
    """The fault run (chaos/run.py): real workers, Redis and PostgreSQL against the faulted sandbox, then checks."""
    return _run(PY, ROOT / "chaos" / "run.py", *args)


TASKS = {
    "demo": task_demo,
    "test": task_test,
    "lint": task_lint,
    "psabridge": task_psabridge,
    "bench": task_bench,
    "chaos": task_chaos,
}


def main() -> int:
    """Dispatch to a task after making sure the environment exists."""
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        return 2
    ensure_venv()
    return TASKS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
