from __future__ import annotations

import pytest

from psabridge.markers import find_marker, marker_for, strip_marker, with_marker


def test_marker_round_trip() -> None:
    text = with_marker("Escalated to Networking with repro steps.", "abc123def456")
    assert text.endswith("\n\n[psabridge:abc123def456]")
    assert find_marker(text) == "abc123def456"
    assert strip_marker(text) == "Escalated to Networking with repro steps."


def test_marker_is_added_once() -> None:
    once = with_marker("note", "abc123def456")
    assert with_marker(once, "abc123def456") == once


def test_marker_found_inside_html() -> None:
    assert find_marker("<div>Fixed<br>[psabridge:k_1-2345]</div>") == "k_1-2345"
    assert find_marker("no marker here [psabridge:x]") is None
    assert find_marker(None) is None


def test_marker_key_is_validated() -> None:
    with pytest.raises(ValueError, match="marker key"):
        marker_for("has space")
