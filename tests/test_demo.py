"""`psabridge demo`: the main job on the embedded default runs end to end and its checks can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from psabridge import demo as demo_module
from psabridge.cli import app
from psabridge.demo import DemoOptions, run_demo
from psabridge.store import Database
from psabridge.store.models import Link, TicketRow

pytestmark = pytest.mark.slow


def test_the_demo_mirrors_and_carries_notes_both_ways_without_echo(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--tickets", "15", "--folder", str(tmp_path), "--threads", "4"])
    assert result.exit_code == 0, result.output
    assert result.output.count("  ok   ") == 6 and "FAIL" not in result.output
    assert result.output.rstrip().endswith("demo passed")
    db = Database(f"sqlite:///{tmp_path / 'psabridge.db'}")
    try:
        with db.session() as session:
            per_connection = dict(
                session.execute(sa.select(TicketRow.connection, sa.func.count()).group_by(TicketRow.connection)).all()
            )
            mirrored = session.scalars(sa.select(Link.source_key).where(Link.state == "created")).all()
    finally:
        db.dispose()
    assert set(per_connection) == {"msp-cw", "partner-at", "acme-snow", "globex-fs"}
    assert per_connection["acme-snow"] == 16  # 15 seeded and the live incident
    assert any(key.startswith("acme-snow:") for key in mirrored)
    assert (tmp_path / "psabridge.yaml").is_file() and (tmp_path / "sandbox-secrets").is_dir()


def test_a_failed_check_fails_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The technician's note never reaches ServiceNow when ConnectWise is not polled after it
    real_run = demo_module._run

    def forgetful(engine: demo_module.Engine, options: DemoOptions, *connections: str) -> None:
        real_run(engine, options, *[c for c in connections if c != "msp-cw"] or ["acme-snow"])

    monkeypatch.setattr(demo_module, "_run", forgetful)
    report = run_demo(DemoOptions(folder=tmp_path, tickets=5, threads=2), lambda line: None)
    failed = [name for name, passed in report.checks if not passed]
    assert "the technician's note reaches ServiceNow once" in failed
    assert not report.ok
