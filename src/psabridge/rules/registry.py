"""The rule set in force, re-read when config/rules.yaml changes; a bad edit keeps the last good rules in force."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path

from psabridge.log import get_logger
from psabridge.rules.loader import RulesFileError, build_rules
from psabridge.rules.ruleset import RuleSet
from psabridge.yamlsource import Problem

__all__ = ["RulesRegistry"]

_log = get_logger("psabridge.rules")


class RulesRegistry:
    """Serves the current ``RuleSet`` and reloads it when the rules file changes, without a restart.

    The file is checked at most once per ``check_every`` seconds, by modification time and size. A change is
    compiled in full before it replaces the rules in force; if it has problems, the last good rules stay, the
    problems are logged and kept for ``problems()`` (``psabridge config check`` shows them too), and nothing else
    changes. Without a file (``path`` None) the built-in checklist with default settings is served.

    Args:
        path: the rules file (``Settings.rules``), or None.
        tenants: the settings' tenant keys (overrides for other tenants are problems).
        check_every: seconds between checks for a changed file (0: check on every call).
        clock: monotonic seconds; injected in tests.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        tenants: Collection[str] | None = None,
        check_every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._tenants = tuple(tenants) if tenants is not None else None
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: RuleSet | None = RuleSet.default() if self._path is None else None
        self._problems: list[Problem] = []
        self._signature: tuple[int, int] | None = None
        self._checked_at: float | None = None

    @property
    def path(self) -> Path | None:
        """The rules file, if there is one."""
        return self._path

    def rules(self) -> RuleSet:
        """The rules in force, re-read first if the file changed.

        Raises:
            RulesFileError: the file has never loaded without problems (there are no last good rules to use).
        """
        now = self._clock()
        if self._path is not None and (self._checked_at is None or now - self._checked_at >= self._check_every):
            self.reload()
        if self._rules is None:
            raise RulesFileError(self._problems)
        return self._rules

    def problems(self) -> list[Problem]:
        """The problems of the last load (empty when the file in force is current)."""
        return list(self._problems)

    def reload(self, *, force: bool = False) -> list[Problem]:
        """Re-read the file if it changed (or ``force``); returns the problems found."""
        if self._path is None:
            return []
        with self._lock:
            try:
                return self._reload(self._path, force)
            finally:
                self._checked_at = self._clock()

    def _reload(self, path: Path, force: bool) -> list[Problem]:
        try:
            stat = path.stat()
            signature = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            signature = (-1, -1)
        if not force and signature == self._signature:
            return list(self._problems)
        self._signature = signature
        rules, problems = build_rules(path, tenants=self._tenants)
        self._problems = problems
        if rules is not None:
            if self._rules is not None:
                _log.info("rules reloaded", file=str(path))
            self._rules = rules
        else:
            _log.warning(
                "rules file has problems; the last good rules stay in force"
                if self._rules is not None
                else "rules file has problems; no rules can run until it is fixed",
                file=str(path),
                problems=[str(p) for p in problems],
            )
        return list(problems)
