"""The chaos run (issue 15): psabridge's real processes against the faulted sandbox, then the invariants."""
