"""The demo: the built-in sandbox, a generated configuration and the bridge on the embedded default, end to end.

What it does, in order (every step through the production code paths; only the vendors are simulated):

1. Starts the vendor simulators in this process on ephemeral loopback ports, seeded with an MSP's world.
2. Writes a configuration pointing at them (``<folder>/psabridge.yaml``, secrets beside it) and a fresh SQLite store.
3. Backfills every connection (the first poll, with no watermark) through in-process Dramatiq workers: each ticket
   is fetched, mapped, stored, and mirrored where a link says so.
4. Plays a live exchange: the client's agent opens a P1 in ServiceNow for "MSP Support"; it is mirrored to
   ConnectWise; a technician adds a note and moves it to In Progress; the agent answers with a work note. Each side
   is polled as the scheduler would, and each change must arrive once on the other side.
5. Polls both sides again and checks that nothing more is written (no echo loop).
6. Summarises the store: tickets per connection, mirrors, write-backs, findings and dead letters.

The sandbox is the separate psabridge-sandbox distribution: it is imported when the demo runs, not with this module.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from psabridge.files import write_private
from psabridge.settings import Settings, load_settings
from psabridge.store import deadletters, findings, links, outbox, tickets, upgrade
from psabridge.sync.context import SyncContext
from psabridge.sync.poll import poll_connection
from psabridge.sync.runtime import Engine, boot

if TYPE_CHECKING:
    from psabridge_sandbox.people import People
    from psabridge_sandbox.runner import SandboxRunner

__all__ = ["DemoOptions", "DemoReport", "run_demo"]

Echo = Callable[[str], None]

_SN, _CW = "acme-snow", "msp-cw"  # the generated configuration's client ServiceNow and the MSP's ConnectWise
_TITLE = "Email down for the whole Boston office"


@dataclass(frozen=True)
class DemoOptions:
    """How the demo runs.

    Attributes:
        folder: where the configuration, its secrets and the SQLite store are written (the store is recreated).
        tickets: seed tickets per vendor.
        seed: seed of the generated world.
        threads: in-process worker threads.
        wait: the longest wait, in seconds, for queued work to finish after each step.
    """

    folder: Path
    tickets: int = 100
    seed: int = 0
    threads: int = 8
    wait: float = 300.0


@dataclass
class DemoReport:
    """What the demo checked, and the store's totals at the end."""

    checks: list[tuple[str, bool]] = field(default_factory=list)
    tickets: dict[str, int] = field(default_factory=dict)
    mirrors: dict[str, int] = field(default_factory=dict)
    write_backs: dict[str, int] = field(default_factory=dict)
    findings: list[tuple[str, int]] = field(default_factory=list)
    dead_letters: int = 0

    @property
    def ok(self) -> bool:
        """Every check passed and nothing ended as a dead letter."""
        return all(passed for _, passed in self.checks) and self.dead_letters == 0


def run_demo(options: DemoOptions, echo: Echo) -> DemoReport:
    """Run the demo (see the module docstring), printing each step through ``echo``."""
    from psabridge_sandbox.people import People

    report = DemoReport()
    with _sandbox(options) as runner:
        names = ", ".join(name for name, info in runner.infos.items() if info.running)
        echo(f"sandbox: {names} on 127.0.0.1, {options.tickets} seed tickets per vendor (seed {options.seed})")
        settings = _configure(options, runner)
        echo(f"config: {settings.source}  store: {settings.database}")
        upgrade(settings.database)
        engine = boot(settings)
        try:
            people = People(runner.infos["servicenow"], runner.infos["connectwise"])
            try:
                engine.start_workers(options.threads)
                _backfill(engine, options, echo, report)
                _live(engine, people, options, echo, report)
                _no_echo(engine, people, options, echo, report)
                _summarise(engine.context, report)
            finally:
                people.close()
        finally:
            engine.stop()
    return report


@contextmanager
def _sandbox(options: DemoOptions) -> Iterator[SandboxRunner]:
    from psabridge_sandbox.freshservice import PLAN_ENV
    from psabridge_sandbox.runner import SandboxRunner

    # The sandbox's Freshservice runs on its unlimited plan here: at Growth's 70 calls a minute (which the connector
    # would honour) the demo's Freshservice backfill alone would take several minutes.
    previous = os.environ.get(PLAN_ENV)
    os.environ[PLAN_ENV] = "unlimited"
    try:
        runner = SandboxRunner(port_base=0, tickets=options.tickets, seed=options.seed)
        runner.start()
    finally:
        if previous is None:
            os.environ.pop(PLAN_ENV, None)
        else:
            os.environ[PLAN_ENV] = previous
    try:
        yield runner
    finally:
        runner.stop()


def _configure(options: DemoOptions, runner: SandboxRunner) -> Settings:
    """Write the sandbox's configuration into the folder, with a fresh store, quiet logs and an unthrottled FS."""
    from psabridge_sandbox.configout import write_config

    folder = options.folder.resolve()
    for leftover in folder.glob("psabridge.db*"):
        leftover.unlink()
    shutil.rmtree(folder / "sandbox-secrets", ignore_errors=True)
    path = write_config(folder / "psabridge.yaml", runner.infos, world=runner.world, host="127.0.0.1")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["log"] = {"level": "warning", "format": "console"}
    for connection in data["connections"]:
        if connection["system"] == "freshservice":  # matches the sandbox's unlimited plan (see _sandbox)
            connection["rate_budget"] = {"vendor_limits": False}
    header = "".join(line + "\n" for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    note = "# Written by `psabridge demo` (no Freshservice plan limits: the demo's sandbox runs its unlimited plan).\n"
    write_private(path, header + note + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120))
    return load_settings(path)


def _run(engine: Engine, options: DemoOptions, *connections: str) -> None:
    """Poll the connections as the scheduler would, then wait for the work it queued (ingest, mirrors, write-back)."""
    for name in connections:
        poll_connection(engine.context, name)
    if not engine.drain(options.wait):
        raise TimeoutError(f"queued work did not finish within {options.wait:.0f}s")


def _backfill(engine: Engine, options: DemoOptions, echo: Echo, report: DemoReport) -> None:
    names = [c.name for c in engine.settings.connections]
    echo(f"backfill: polling {len(names)} connections from no watermark, {options.threads} worker threads ...")
    started = time.monotonic()
    _run(engine, options, *names)
    took = time.monotonic() - started
    with engine.context.db.session() as session:
        stored = tickets.count_by_connection(session)
        created = links.count_created_by_name(session)
    total = sum(stored.values())
    echo(f"backfill: {total} tickets read, mapped and stored in {took:.1f}s ({total / max(took, 1e-9):.0f}/s)")
    for name in names:
        echo(f"  {name:<12} {stored.get(name, 0):>6} tickets")
    for link in engine.settings.links:
        echo(f"  mirror {link.name}: {created.get(link.name, 0)} tickets mirrored")
    report.checks.append(("every connection backfilled", all(stored.get(n, 0) > 0 for n in names)))


def _live(engine: Engine, people: People, options: DemoOptions, echo: Echo, report: DemoReport) -> None:
    sys_id = people.open_incident(_TITLE, impact="1", urgency="1")
    number = people.incident(sys_id)["number"]
    echo(f"live: the client's agent opens {number} in ServiceNow, P1, for the group MSP Support")
    _run(engine, options, _SN)
    mirrors = people.cw_tickets(_TITLE)
    report.checks.append(("the incident is mirrored once to ConnectWise", len(mirrors) == 1))
    if len(mirrors) != 1:
        echo(f"  expected one ConnectWise mirror, found {len(mirrors)}")
        return
    ticket = mirrors[0]
    cw_id = str(ticket["id"])
    echo(
        f"  ConnectWise #{cw_id} on board {ticket['board']['name']!r}, {ticket['priority']['name']!r}, "
        f"status {ticket['status']['name']!r}"
    )
    people.cw_note(cw_id, "Exchange Online connector certificate expired; renewing it now.")
    people.cw_status(cw_id, "In Progress")
    echo(f"live: a technician notes the cause on #{cw_id} and sets it In Progress")
    _run(engine, options, _CW)
    incident = people.incident(sys_id)
    carried = sum("certificate expired" in n for n in people.sn_notes(sys_id))
    echo(f"  {number}: state {incident['state']} (2 = In Progress), technician's note present {carried} time(s)")
    report.checks.append(("the technician's note reaches ServiceNow once", carried == 1))
    report.checks.append(("ConnectWise owns status: ServiceNow shows In Progress", incident["state"] == "2"))
    people.sn_update(sys_id, work_notes="Confirmed with the office manager: mail is flowing again.")
    echo(f"live: the agent answers with a work note on {number}")
    _run(engine, options, _SN)
    carried = sum("mail is flowing again" in n for n in people.cw_notes(cw_id))
    echo(f"  #{cw_id}: agent's note present {carried} time(s)")
    report.checks.append(("the agent's note reaches ConnectWise once", carried == 1))


def _no_echo(engine: Engine, people: People, options: DemoOptions, echo: Echo, report: DemoReport) -> None:
    before = {vendor: len(writes) for vendor, writes in people.writes().items()}
    _run(engine, options, _SN, _CW)
    after = {vendor: len(writes) for vendor, writes in people.writes().items()}
    echo(f"echo check: writes recorded by the simulators before and after polling both sides again: {after}")
    report.checks.append(("no echo loop: polling again writes nothing", before == after))


def _summarise(ctx: SyncContext, report: DemoReport) -> None:
    with ctx.db.session() as session:
        report.tickets = dict(tickets.count_by_connection(session))
        report.mirrors = dict(links.count_created_by_name(session))
        report.write_backs = dict(outbox.count_by_status(session))
        report.findings = findings.open_counts_by_code(session)
        report.dead_letters = deadletters.count_dead_letters(session)
