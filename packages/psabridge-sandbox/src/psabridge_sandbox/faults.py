"""Fault injection: named profiles, chosen at start and changeable while running, deterministic under a seed.

A simulator asks the injector once per request (``decide``) and once per outgoing webhook (``webhook_plan``); a
vendor list endpoint calls ``between_pages`` after serving a page so records change while a client pages, which
is when the real paging anomalies show (offset paging skips or repeats records whose sort key moved).
Every call draws the same number of random numbers whatever the outcome, so a seed replays the same faults for
the same sequence of requests.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from psabridge_sandbox.clock import Clock, SystemClock
from psabridge_sandbox.table import Row, RowId, Table

__all__ = ["PROFILES", "Decision", "FaultInjector", "FaultProfile", "WebhookPlan", "profile_named"]

Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Span = tuple[Annotated[float, Field(ge=0.0)], Annotated[float, Field(ge=0.0)]]


class FaultProfile(BaseModel):
    """What goes wrong, and how often. Rates are shares of requests (0..1); spans are (min, max)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    error_rate: Rate = Field(0.0, description="share of requests answered with a 5xx (the vendor renders the body)")
    error_statuses: tuple[int, ...] = Field((500, 502, 503), min_length=1)
    storm_rate: Rate = Field(0.0, description="chance that a request starts a 429 storm")
    storm_seconds: float = Field(5.0, gt=0, description="how long a storm answers every request 429")
    latency_ms: Span = Field((0.0, 0.0), description="extra latency before every answer")
    timeout_rate: Rate = Field(0.0, description="share of requests held for timeout_seconds, then answered 504")
    timeout_seconds: float = Field(30.0, ge=0)
    malformed_rate: Rate = Field(0.0, description="share of 2xx answers whose body is cut in half")
    churn_touch: int = Field(0, ge=0, description="records modified between two pages of a list")
    churn_create: int = Field(0, ge=0, description="records created between two pages of a list")
    webhook_drop_rate: Rate = 0.0
    webhook_duplicate_rate: Rate = 0.0
    webhook_reorder_rate: Rate = Field(0.0, description="share of webhooks held back until the next one is sent")
    webhook_delay_ms: Span = (0.0, 0.0)
    paths: tuple[str, ...] = Field((), description="only requests under these path prefixes (empty: all)")

    @model_validator(mode="after")
    def _spans(self) -> FaultProfile:
        for name in ("latency_ms", "webhook_delay_ms"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: minimum {low} is above maximum {high}")
        if any(not 500 <= s <= 599 for s in self.error_statuses):
            raise ValueError("error_statuses must be 5xx")
        return self


PROFILES: dict[str, FaultProfile] = {
    p.name: p
    for p in (
        FaultProfile(name="none"),
        FaultProfile(name="flaky", error_rate=0.1, latency_ms=(0, 50)),
        FaultProfile(name="throttled", storm_rate=0.05, storm_seconds=3),
        FaultProfile(name="slow", latency_ms=(200, 800), timeout_rate=0.05, timeout_seconds=35),
        FaultProfile(name="malformed", malformed_rate=0.1),
        FaultProfile(name="churn", churn_touch=3, churn_create=1),
        FaultProfile(
            name="webhooks",
            webhook_drop_rate=0.1,
            webhook_duplicate_rate=0.2,
            webhook_reorder_rate=0.2,
            webhook_delay_ms=(0, 2000),
        ),
        FaultProfile(
            name="chaos",
            error_rate=0.05,
            storm_rate=0.01,
            storm_seconds=2,
            latency_ms=(0, 200),
            timeout_rate=0.01,
            timeout_seconds=35,
            malformed_rate=0.02,
            churn_touch=2,
            churn_create=1,
            webhook_drop_rate=0.05,
            webhook_duplicate_rate=0.1,
            webhook_reorder_rate=0.1,
            webhook_delay_ms=(0, 1000),
        ),
    )
}
"""The named profiles: none, flaky, throttled, slow, malformed, churn, webhooks, chaos."""


def profile_named(name: str) -> FaultProfile:
    """The named profile (ValueError lists the names)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown fault profile {name!r}; known: {', '.join(PROFILES)}") from None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one request. At most one of throttle, hang, error; latency comes first in any case."""

    latency: float = 0.0  # seconds
    throttle: int | None = None  # answer 429 with this Retry-After (seconds)
    hang: float | None = None  # hold this many seconds, then answer 504
    error: int | None = None  # answer this 5xx
    malformed: bool = False  # cut a 2xx body in half

    @property
    def name(self) -> str | None:
        """The fault's name as recorded, or None."""
        if self.throttle is not None:
            return "throttle"
        if self.hang is not None:
            return "timeout"
        if self.error is not None:
            return "error"
        if self.malformed:
            return "malformed"
        return "latency" if self.latency else None


NO_FAULT = Decision()


@dataclass(frozen=True, slots=True)
class WebhookPlan:
    """What to do to one outgoing webhook delivery."""

    drop: bool = False
    duplicate: bool = False
    hold: bool = False  # reorder: send it after the next delivery
    delay: float = 0.0  # seconds


class FaultInjector:
    """The current fault profile of one simulator, with its own seeded random stream (thread-safe)."""

    def __init__(self, profile: FaultProfile | str = "none", *, seed: int = 0, clock: Clock | None = None) -> None:
        self._profile = profile_named(profile) if isinstance(profile, str) else profile
        self._rng = random.Random(f"psabridge-faults:{seed}")
        self._clock = clock or SystemClock()
        self._storm_until = 0.0
        self._lock = threading.Lock()

    @property
    def profile(self) -> FaultProfile:
        """The profile in force."""
        return self._profile

    def set(self, profile: FaultProfile | str) -> FaultProfile:
        """Switch to another profile (by name or value); an ongoing 429 storm ends."""
        new = profile_named(profile) if isinstance(profile, str) else profile
        with self._lock:
            self._profile = new
            self._storm_until = 0.0
        return new

    def update(self, changes: Mapping[str, Any]) -> FaultProfile:
        """Apply ``{"profile": name, <field>: value ...}``: fields override the named profile, else the current one.

        Raises:
            ValueError: an unknown profile name or an invalid field, with the reason.
        """
        data = dict(changes)
        name = data.pop("profile", None)
        if name is not None and not isinstance(name, str):
            raise ValueError("profile must be a name")
        base = profile_named(name) if name else self._profile
        if not data:
            return self.set(base)
        merged = {**base.model_dump(), **data}
        if "name" not in data:
            merged["name"] = f"{base.name}+custom"
        try:
            return self.set(FaultProfile.model_validate(merged))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors())
            raise ValueError(problems) from None

    def decide(self, method: str, path: str) -> Decision:
        """The fault (if any) for one request."""
        with self._lock:
            p = self._profile
            r_storm, r_timeout, r_error, r_status, r_malformed, r_latency = (self._rng.random() for _ in range(6))
            if p.paths and not path.startswith(p.paths):
                return NO_FAULT
            low, high = p.latency_ms
            latency = (low + (high - low) * r_latency) / 1000
            now = self._clock.time()
            if now < self._storm_until:
                return Decision(latency, throttle=max(1, math.ceil(self._storm_until - now)))
            if r_storm < p.storm_rate:
                self._storm_until = now + p.storm_seconds
                return Decision(latency, throttle=max(1, math.ceil(p.storm_seconds)))
            if r_timeout < p.timeout_rate:
                return Decision(latency, hang=p.timeout_seconds)
            if r_error < p.error_rate:
                return Decision(latency, error=p.error_statuses[int(r_status * len(p.error_statuses))])
            malformed = r_malformed < p.malformed_rate
            return Decision(latency, malformed=malformed) if latency or malformed else NO_FAULT

    def webhook_plan(self) -> WebhookPlan:
        """The fault (if any) for one outgoing webhook delivery."""
        with self._lock:
            p = self._profile
            r_drop, r_dup, r_hold, r_delay = (self._rng.random() for _ in range(4))
        low, high = p.webhook_delay_ms
        return WebhookPlan(
            drop=r_drop < p.webhook_drop_rate,
            duplicate=r_dup < p.webhook_duplicate_rate,
            hold=r_hold < p.webhook_reorder_rate,
            delay=(low + (high - low) * r_delay) / 1000,
        )

    def between_pages(
        self,
        table: Table,
        *,
        change: Callable[[Row], Mapping[str, Any]] | None = None,
        create: Callable[[], Mapping[str, Any]] | None = None,
    ) -> list[RowId]:
        """Touch ``churn_touch`` random rows and create ``churn_create`` new ones; return the ids involved.

        A vendor list endpoint calls this after serving each page. ``change(row)`` gives the field changes of a
        touched row (default: none, only its modification time moves); ``create()`` gives a new row's data (default:
        nothing is created).
        """
        with self._lock:
            p = self._profile
            ids = table.ids()
            picks = [ids[int(self._rng.random() * len(ids))] for _ in range(p.churn_touch)] if ids else []
        touched: list[RowId] = []
        for row_id in dict.fromkeys(picks):
            row = table.get(row_id)
            if row is not None:
                table.update(row_id, change(row) if change else {})
                touched.append(row_id)
        if create is not None:
            touched.extend(table.insert(create()).id for _ in range(p.churn_create))
        return touched
