"""`psabridge rules evaluate` and `psabridge rules hands-off` on a store the pipeline filled (reconcile over fake
vendors, the evaluate step on the embedded broker), and the flag shown by `findings` and `rules explain`."""

from __future__ import annotations

import json

import yaml

from .test_cli import Setup
from .test_findings_cli import filled

__all__ = ["filled"]


def test_rules_evaluate_chooses_pending_or_all_tickets_and_prints_counts_per_connection(filled: Setup) -> None:
    code, out, err = filled.run("rules", "evaluate", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dry_run"] is False and report["waited"] is True and report["left"] == 0
    assert report["connections"]["acme-snow"]["tickets"] == 0  # the reconcile evaluated them all
    code, out, err = filled.run("rules", "evaluate", "--all", "--json")
    assert code == 0, err
    snow = json.loads(out)["connections"]["acme-snow"]
    assert (snow["tickets"], snow["evaluated"], snow["left"], snow["writes"]) == (2, 2, 0, 0)
    assert snow["findings"] >= 1 and snow["held_back"] >= 1  # history: act_since held the notes back
    assert filled.snow.writes == []
    code, out, _ = filled.run("rules", "evaluate", "--all", "--dry-run", "--ticket", "SNOW-1")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("dry run: nothing was stored or written")
    assert lines[1].split() == [
        "connection",
        "tickets",
        "evaluated",
        "left",
        "skipped",
        "findings",
        "writes",
        "held_back",
    ]
    assert lines[2].split()[:3] == ["acme-snow", "1", "1"] and len(lines) == 3


def test_rules_evaluate_refuses_an_unknown_connection_or_ticket(filled: Setup) -> None:
    code, _, err = filled.run("rules", "evaluate", "--connection", "nope")
    assert code == 2 and "nope" in err
    code, _, err = filled.run("rules", "evaluate", "--ticket", "SNOW-99")
    assert code == 1 and "no stored ticket 'SNOW-99'" in err
    code, _, err = filled.run("rules", "evaluate", "--ticket", "SNOW-1", "--connection", "msp-cw")
    assert code == 1 and "in msp-cw" in err


def test_rules_hands_off_sets_and_clears_the_flag_shown_by_findings_and_explain(filled: Setup) -> None:
    code, out, err = filled.run("rules", "hands-off", "--ticket", "SNOW-1", "--reason", "legal hold")
    assert code == 0, err
    assert out.strip() == "acme-snow:1: hands-off (legal hold): evaluated, nothing written on it"
    found = json.loads(filled.run("findings", "--ticket", "SNOW-1", "--json")[1])
    assert found and {(f["hands_off"], f["hands_off_reason"]) for f in found} == {(True, "legal hold")}
    others = json.loads(filled.run("findings", "--ticket", "SNOW-2", "--json")[1])
    assert {f["hands_off"] for f in others} <= {False}
    code, out, _ = filled.run("findings", "--ticket", "SNOW-1")
    assert code == 0 and "hands-off (psabridge rules hands-off): legal hold: nothing is written on it" in out
    report = json.loads(filled.run("rules", "explain", "--ticket", "SNOW-1", "--json")[1])
    assert report["hands_off"] == {"set": True, "reason": "legal hold"}
    assert "hands_off" in {w["reason"] for w in report["withheld"]} and "act_since" not in {
        w["reason"] for w in report["withheld"]
    }
    code, out, _ = filled.run("rules", "explain", "--ticket", "SNOW-1")
    assert "hands-off (psabridge rules hands-off): legal hold: nothing is written" in out
    # cleared: no flag, and the ticket needs evaluation again (rules evaluate without --all picks it up)
    code, out, _ = filled.run("rules", "hands-off", "--ticket", "SNOW-1", "--off")
    assert code == 0 and "hands-off cleared" in out
    report = json.loads(filled.run("rules", "explain", "--ticket", "SNOW-1", "--json")[1])
    assert report["hands_off"] == {"set": False, "reason": None}
    assert "hands_off" not in {w["reason"] for w in report["withheld"]}
    evaluated = json.loads(filled.run("rules", "evaluate", "--json")[1])
    assert evaluated["connections"]["acme-snow"]["tickets"] == 1
    code, _, err = filled.run("rules", "hands-off", "--ticket", "SNOW-1", "--off", "--reason", "x")
    assert code == 2 and "--reason" in err
    code, _, err = filled.run("rules", "hands-off", "--ticket", "SNOW-99")
    assert code == 1 and "no stored ticket 'SNOW-99'" in err


def test_rules_evaluate_with_a_broken_rules_file_exits_2_naming_it_and_queues_nothing(filled: Setup) -> None:
    broken = filled.config.parent / "rules-broken.yaml"
    broken.write_text("rules:\n  identity:\n    enabled: perhaps\n")
    data = yaml.safe_load(filled.config.read_text())
    filled.config.write_text(yaml.safe_dump({**data, "rules": str(broken)}))
    code, _, err = filled.run("rules", "evaluate", "--all")
    assert code == 2 and "rules-broken.yaml" in err and "enabled" in err
    assert filled.snow.writes == []
