"""Broken mapping files give errors that name file, line and path; the shipped files are valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from psabridge.mapping import MappingFileError, check_mapping, load_mapping
from tests.mapping.conftest import MAPPINGS, VENDORS

BASE = """\
system: connectwise
fields:
  external_id: {path: id}
  status:
    path: status.name
    map:
      New: new
      ">Closed": closed
    outbound: {to: status, as: reference, lookup: status}
"""


def problems(tmp_path: Path, text: str, name: str = "m.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    mapper, found = check_mapping(path)
    assert mapper is None, "expected problems"
    return [str(p).replace(f"{tmp_path}/", "") for p in found]


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_shipped_vendor_mappings_are_valid(vendor: str) -> None:
    mapper = load_mapping(MAPPINGS / f"{vendor}.yaml")
    assert mapper.system.value == vendor
    assert {"external_id", "status", "priority", "summary", "updated_at"} <= set(mapper.compiled().rules)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "  priority: {path: [a, b}\n") == [
        "m.yaml:10: invalid YAML: expected ',' or ']', but got '}'"
    ]


def test_duplicate_keys_name_both_lines(tmp_path: Path) -> None:
    text = BASE.replace('      ">Closed": closed\n', '      ">Closed": closed\n      New: in_progress\n')
    assert problems(tmp_path, text) == ["m.yaml:9 fields.status.map.New: duplicate key (first defined on line 7)"]


def test_unknown_keys_are_schema_errors_with_a_hint(tmp_path: Path) -> None:
    text = BASE + "  summary: {pth: summary}\n"
    assert problems(tmp_path, text) == ["m.yaml:10 fields.summary.pth: unknown field (did you mean 'path'?)"]


def test_unknown_canonical_fields(tmp_path: Path) -> None:
    text = BASE + "  stauts: {path: x}\n  requester:\n    fields:\n      emial: {path: contactEmailAddress}\n"
    assert problems(tmp_path, text) == [
        "m.yaml:10 fields.stauts: unknown canonical field 'stauts' (did you mean 'status'?)",
        "m.yaml:13 fields.requester.fields.emial: Party has no field 'emial' (did you mean 'email'?)",
    ]


def test_tenant_is_not_a_field_rule(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "  tenant: {path: company.identifier}\n")
    assert len(found) == 1
    assert found[0].startswith("m.yaml:10 fields.tenant: tenant comes from the settings")


def test_map_targets_must_be_canonical_values(tmp_path: Path) -> None:
    text = BASE.replace("      New: new\n", "      New: new\n      Waiting: waiting\n") + (
        "  tier: {path: board.name, map: {Tier 9: 9}}\n  priority: {path: p, default: P0}\n"
    )
    assert problems(tmp_path, text) == [
        "m.yaml:8 fields.status.map.Waiting: 'waiting' is not a canonical status: use one of new, assigned, "
        "in_progress, on_hold, resolved, closed, cancelled",
        "m.yaml:11 fields.tier.map.Tier 9: 9 is not a valid tier: Input should be less than or equal to 3",
        "m.yaml:12 fields.priority.default: 'P0' is not a canonical priority: use one of P1, P2, P3, P4",
    ]


def test_ambiguous_inverses_must_be_declared(tmp_path: Path) -> None:
    text = BASE.replace("      New: new\n", "      New: new\n      New (portal): new\n")
    assert problems(tmp_path, text) == [
        "m.yaml:8 fields.status.map.New (portal): ambiguous inverse: status 'new' is mapped from 'New', "
        "'New (portal)'; say which one write-back sets under inverse: {new: ...} (fields.status.inverse)"
    ]
    declared = text.replace("    outbound:", "    inverse: {new: New}\n    outbound:")
    path = tmp_path / "ok.yaml"
    path.write_text(declared)
    assert check_mapping(path)[1] == []


def test_a_map_without_write_back_may_be_many_to_one(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(BASE + "  priority: {path: p, map: {'4': P4, '5': P4}}\n")
    assert check_mapping(path)[1] == []


def test_vendor_values_differing_only_in_case_are_one_value(tmp_path: Path) -> None:
    text = BASE.replace("      New: new\n", "      New: new\n      NEW: new\n")
    assert problems(tmp_path, text) == [
        "m.yaml:8 fields.status.map.NEW: 'NEW' is already mapped (as 'New'); vendor values are matched ignoring case"
    ]


def test_transforms_are_checked_by_name_and_arguments(tmp_path: Path) -> None:
    text = BASE + (
        "  summary: {path: summary, transform: [trim, html2text]}\n"
        "  description: {path: d, transform: {truncate: {length: 0}}}\n"
        "  category: {path: c, transform: {lookup: {feld: x}}}\n"
        "  queue: {path: q, transform: {python: {module: os}}}\n"
    )
    found = problems(tmp_path, text)
    assert found[0].startswith("m.yaml:10 fields.summary.transform[1]: unknown transform 'html2text' (did you mean ")
    assert (
        found[1] == "m.yaml:11 fields.description.transform.truncate.length: truncate: Input should be greater than 0"
    )
    assert found[2:4] == [
        "m.yaml:12 fields.category.transform.lookup.field: lookup: Field required",
        "m.yaml:12 fields.category.transform.lookup.feld: lookup: Extra inputs are not permitted",
    ]
    assert found[4].startswith("m.yaml:13 fields.queue.transform.python: unknown transform 'python'")
    assert len(found) == 5


def test_paths_and_write_back_targets(tmp_path: Path) -> None:
    text = BASE + (
        "  summary: {path: 'summary[', outbound: {to: 'x[0]'}}\n"
        "  created_at: {path: a.b, transform: datetime, outbound: {to: created}}\n"
        "  notes: {items: _psa_notes, fields: {text: {path: text}}, outbound: {to: notes}}\n"
    )
    assert problems(tmp_path, text) == [
        "m.yaml:10 fields.summary.path: 'summary[' is not a valid path (unexpected '[' at position 8)",
        "m.yaml:10 fields.summary.outbound.to: 'x[0]': write-back paths are plain keys (a.b), no [..]",
        "m.yaml:11 fields.created_at.outbound: created_at cannot be written back (write-back sets: assignee, "
        "category, custom, description, impact, kind, priority, queue, sla, source, status, subcategory, summary, "
        "tier, urgency, tenant)",
        "m.yaml:12 fields.notes.outbound: notes is a list: outbound belongs on its fields (notes and time entries are "
        "added with their own actions)",
    ]


def test_rules_must_fit_the_kind_of_field(tmp_path: Path) -> None:
    text = BASE + (
        "  requester: {path: contact.name}\n"
        "  summary: {items: x, fields: {}}\n"
        "  notes: {fields: {text: {path: text}}}\n"
        "  priority: {path: p, scopes: {A: {map: {x: P1}}}}\n"
        "  category: {path: a, const: b}\n"
        "  subcategory: {transform: trim}\n"
    )
    assert problems(tmp_path, text) == [
        "m.yaml:10 fields.requester.path: requester is an object (Party): put path on its fields",
        "m.yaml:10 fields.requester: requester needs fields: (one rule per Party field)",
        "m.yaml:11 fields.summary.items: summary is a single value; items is for lists and objects (notes, requester)",
        "m.yaml:11 fields.summary: needs a path (or all_of, const or cases) to read the value from",
        "m.yaml:12 fields.notes: notes needs items: the path of the list (e.g. _psa_notes)",
        "m.yaml:13 fields.priority.scopes: scopes needs scope: {path: ..., label: ...} to say what a scope is",
        "m.yaml:14 fields.category: give one of path, all_of, const (this rule has path, const)",
        "m.yaml:15 fields.subcategory: needs a path (or all_of, const or cases) to read the value from",
    ]


def test_required_parts(tmp_path: Path) -> None:
    assert problems(tmp_path, "fields:\n  summary: {path: summary}\n") == [
        "m.yaml:1: system: is required (connectwise, autotask, servicenow or freshservice)",
        "m.yaml:1 fields: external_id is required: the path of the vendor's ticket id",
    ]
    assert problems(tmp_path, "system: psa\n") == [
        "m.yaml:1 system: 'psa' is not one of connectwise, autotask, servicenow, freshservice"
    ]
    assert problems(tmp_path, "- a\n") == ["m.yaml:1: a mapping file must hold a mapping (system:, fields: ...)"]


def test_problems_in_an_override_name_the_override_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    text = "extends: base.yaml\nfields:\n  status:\n    map:\n      Done: finished\n"
    assert problems(tmp_path, text, "conn.yaml") == [
        "conn.yaml:5 fields.status.map.Done: 'finished' is not a canonical status: use one of new, assigned, "
        "in_progress, on_hold, resolved, closed, cancelled"
    ]


def test_problems_in_a_tenant_overlay_name_the_overlay_lines(tmp_path: Path) -> None:
    text = BASE + (
        "tenants:\n"
        "  acme:\n"
        "    fields:\n"
        "      status:\n"
        "        map:\n"
        "          Closed by Client: closed\n"
        "          Waiting on Vendor: on-hold\n"
    )
    assert problems(tmp_path, text) == [
        "m.yaml:16 tenants.acme.fields.status.map.Waiting on Vendor: 'on-hold' is not a canonical status: use one of "
        "new, assigned, in_progress, on_hold, resolved, closed, cancelled",
        "m.yaml:15 tenants.acme.fields.status.map.Closed by Client: ambiguous inverse: status 'closed' is mapped from "
        "'>Closed', 'Closed by Client'; say which one write-back sets under inverse: {closed: ...} "
        "(tenants.acme.fields.status.inverse)",
    ]


def test_extends_must_exist_and_not_loop(tmp_path: Path) -> None:
    assert problems(tmp_path, "extends: nowhere.yaml\n") == ["m.yaml:1 extends: file nowhere.yaml does not exist"]
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    assert problems(tmp_path, "extends: a.yaml\n") == ["a.yaml extends: extends goes round in a circle (or too deep)"]


def test_load_mapping_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("system: connectwise\nfields:\n  stauts: {path: x}\n")
    with pytest.raises(MappingFileError) as info:
        load_mapping(path)
    assert len(info.value.problems) == 2
    assert "stauts" in str(info.value)


def test_derived_fields_are_declared_in_canonical_names(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(BASE + "derived:\n  priority: [impact, urgency]\n")
    assert load_mapping(path).derived == {"priority": ("impact", "urgency")}
    assert problems(tmp_path, BASE + "derived:\n  priority: [impcat]\n  tier: [tier]\n  queue: []\n") == [
        "m.yaml:11 derived.priority: unknown canonical field 'impcat' (did you mean 'impact'?)",
        "m.yaml:12 derived.tier: name the other fields the vendor derives it from, e.g. priority: [impact, urgency]",
        "m.yaml:13 derived.queue: name the other fields the vendor derives it from, e.g. priority: [impact, urgency]",
    ]


def test_the_fields_of_a_settable_object_carry_their_own_write_back(tmp_path: Path) -> None:
    text = BASE + (
        "  sla:\n"
        "    fields:\n"
        "      response_due: {path: respondBy, transform: datetime, outbound: {to: respondBy, transform: iso_utc}}\n"
        "  requester:\n"
        "    fields:\n"
        "      name: {path: contact.name, outbound: {to: contactName}}\n"
    )
    assert problems(tmp_path, text) == [
        "m.yaml:15 fields.requester.fields.name.outbound: name cannot be written back (write-back sets: assignee, "
        "category, custom, description, impact, kind, priority, queue, sla, source, status, subcategory, summary, "
        "tier, urgency, tenant)",
    ]
