"""The checklist cases (psabridge_sandbox.desk) open in every simulator through its API and read back its notes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from psabridge_sandbox.desk import CASES, SYSTEMS, CaseBook
from psabridge_sandbox.runner import SandboxRunner


@pytest.fixture(scope="module")
def book() -> Iterator[CaseBook]:
    with SandboxRunner(port_base=0, tickets=0) as runner:
        made = CaseBook(runner.infos)
        yield made
        made.close()


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_case_opens_in_the_vendor_and_only_internal_notes_are_read_back(book: CaseBook, system: str) -> None:
    opened = {case: book.open_case(case, system, tag=system) for case in CASES}
    desk = book.desk(system)
    assert len({o.ticket_id for o in opened.values()}) == len(CASES)
    assert all(o.summary.endswith(f"[{system}]") for o in opened.values())
    assert desk.internal_notes(opened["password_reset"].ticket_id) == []
    assert desk.internal_notes(opened["bare_escalation"].ticket_id) == ["Please assist."]
    assert "Please assist." in desk.all_notes(opened["bare_escalation"].ticket_id)  # (ConnectWise: the description too)
    weak = opened["weak_resolve"].ticket_id
    # Freshservice keeps no resolution field: the agent's resolution is a private note there.
    assert desk.internal_notes(weak) == (["Rebooted and it worked."] if system == "freshservice" else [])
