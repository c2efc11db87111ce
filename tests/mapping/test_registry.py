"""Hot reload: a changed mapping file is used without a restart; a bad edit keeps the last good mapping in force."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from psabridge.errors import ConfigError
from psabridge.mapping import MappingFileError, MappingRegistry
from psabridge.mapping import loader as loader_module
from psabridge.mapping import registry as registry_module
from psabridge.model import Status
from psabridge.settings import ConnectionSettings
from tests.mapping.conftest import MAPPINGS, fixture


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def connection(path: Path, system: str = "connectwise") -> ConnectionSettings:
    return ConnectionSettings(
        name="msp-cw", system=system, base_url="http://127.0.0.1:9", mapping=path, tenants={"AcmeDental": "acme"}
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later mtime, whatever the clock


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    with structlog.testing.capture_logs():
        yield


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    shutil.copy(MAPPINGS / "connectwise.yaml", tmp_path / "connectwise.yaml")
    (tmp_path / "msp-cw.yaml").write_text("extends: connectwise.yaml\n")
    return tmp_path / "msp-cw.yaml"


def status_of(registry: MappingRegistry, name: str) -> Status | None:
    raw = {**fixture("connectwise", "tickets_list.json")[0], "status": {"id": 1, "name": name}}
    return registry.mapper("msp-cw").inbound(raw, registry.context("msp-cw")).ticket.status


def test_edits_take_effect_without_a_restart(mapping_file: Path) -> None:
    clock = Clock()
    registry = MappingRegistry([connection(mapping_file)], check_every=2.0, clock=clock)
    assert registry.load_all() == {"msp-cw": []}
    assert status_of(registry, "Waiting on Vendor") is None

    edit(
        mapping_file,
        "extends: connectwise.yaml\n",
        "extends: connectwise.yaml\nfields:\n  status:\n    map: {Waiting on Vendor: on_hold}\n",
    )
    assert status_of(registry, "Waiting on Vendor") is None  # not checked again before check_every
    clock.now = 2.5
    assert status_of(registry, "Waiting on Vendor") == Status.ON_HOLD

    # a file it extends counts as well
    edit(mapping_file.parent / "connectwise.yaml", "      Completed: resolved\n", "      Completed: closed\n")
    clock.now = 5.0
    assert status_of(registry, "Completed") == Status.CLOSED


def test_a_bad_edit_keeps_the_last_good_mapping_and_reports(mapping_file: Path) -> None:
    registry = MappingRegistry([connection(mapping_file)], check_every=0)
    good = registry.mapper("msp-cw")
    edit(mapping_file, "extends: connectwise.yaml\n", "extends: connectwise.yaml\nfields:\n  status: {map: {X: x}}\n")
    with structlog.testing.capture_logs() as logs:
        assert registry.mapper("msp-cw") is good
    [event] = logs
    assert (event["log_level"], event["event"]) == (
        "warning",
        "mapping has problems; the last good mapping stays in force",
    )
    assert "fields.status.map.X: 'x' is not a canonical status" in event["problems"][0]
    [problem] = registry.problems("msp-cw")
    assert (Path(problem.file).name, problem.line, problem.path) == ("msp-cw.yaml", 3, "fields.status.map.X")
    assert status_of(registry, "In Progress") == Status.IN_PROGRESS  # syncing goes on

    edit(mapping_file, "{X: x}", "{X: closed}")
    with structlog.testing.capture_logs() as logs:
        assert registry.mapper("msp-cw") is not good
    assert [e["event"] for e in logs] == ["mapping reloaded"]
    assert registry.problems("msp-cw") == []
    assert status_of(registry, "X") == Status.CLOSED


def test_a_broken_file_at_start_up_cannot_be_used(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("system: connectwise\nfields: [\n")
    registry = MappingRegistry([connection(path)])
    assert registry.load_all()["msp-cw"][0].line == 3  # where the YAML ends unclosed
    with pytest.raises(MappingFileError):
        registry.mapper("msp-cw")
    path.write_text("system: connectwise\nfields: {external_id: {path: id}}\n")
    assert registry.reload("msp-cw") == []
    assert registry.mapper("msp-cw").system.value == "connectwise"


def test_the_file_must_be_for_the_connections_vendor(mapping_file: Path) -> None:
    registry = MappingRegistry([connection(MAPPINGS / "servicenow.yaml")])
    [problem] = registry.load_all()["msp-cw"]
    assert problem.message == "is servicenow, but connection 'msp-cw' is connectwise"
    with pytest.raises(ConfigError, match="no connection named 'nope'"):
        registry.mapper("nope")


def test_threads_asking_while_the_first_load_runs_wait_for_it(
    mapping_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = MappingRegistry([connection(mapping_file)], check_every=60.0)
    real_build = loader_module.build_mapping
    started = threading.Event()

    def slow_build(path: Path) -> Any:
        started.set()
        time.sleep(0.3)  # the first load is still compiling when the other threads ask
        return real_build(path)

    monkeypatch.setattr(registry_module, "build_mapping", slow_build)
    results: list[object] = []

    def ask() -> None:
        try:
            results.append(registry.mapper("msp-cw"))
        except MappingFileError as exc:
            results.append(exc)

    first = threading.Thread(target=ask)
    first.start()
    assert started.wait(5)
    others = [threading.Thread(target=ask) for _ in range(4)]
    for thread in [*others]:
        thread.start()
    for thread in [first, *others]:
        thread.join(10)
    assert len(results) == 5
    assert all(r is results[0] for r in results) and not isinstance(results[0], MappingFileError)
