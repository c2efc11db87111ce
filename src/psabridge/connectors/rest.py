"""HttpConnector: the base a vendor connector declares itself on, plus ChangeRun for incremental reads.

A vendor module declares its defaults as class attributes and overrides the hooks it needs; the shared HTTP
client (``self.http``) is built from them::

    class AcmeConnector(HttpConnector):
        system = System.FRESHSERVICE
        budget_defaults = BudgetLimits(requests=100, per=60)        # the vendor's published limit
        resolutions = {403: Resolution.fail(ConfigError, "agent role lacks permission")}

        def auth(self) -> httpx.Auth:
            return BasicAuth(require_secret(self.settings, "api_key"), "X")

        def error_message(self, response: httpx.Response) -> str | None:
            ...                                                     # the vendor's error body shape

    CONNECTOR = AcmeConnector

``connectors.get_connector(settings)`` imports the module and builds ``CONNECTOR(settings, runtime=...)``.
"""

from __future__ import annotations

import abc
import contextvars
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx

from psabridge.connectors.base import Connector, Page
from psabridge.connectors.budget import BudgetLimits
from psabridge.connectors.http import (
    DefaultHooks,
    FetchedPage,
    HttpClient,
    HttpRuntime,
    Resolution,
    ResolutionKey,
    RetryPolicy,
    build_http_client,
)
from psabridge.connectors.options import ConnectorOptions, read_options
from psabridge.connectors.requestcount import counting
from psabridge.errors import PermanentError
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import RawRecord, VendorMetadata

__all__ = ["ChangeRun", "HttpConnector", "chunks", "counted_pages", "numeric_id"]

T = TypeVar("T")
R = TypeVar("R")
_REMEMBERED = 4096  # sub-resource reads kept for a page completed again (after a rate limit)


class HttpConnector(DefaultHooks, Connector):
    """A connector over the shared HTTP layer. Subclasses declare; ``self.http`` does the sending.

    Class attributes a vendor sets:
        budget_defaults: the vendor's rate limit, used where ``rate_budget`` in the settings is silent.
        resolutions: additions to ``http.DEFAULT_RESOLUTIONS`` (status or exception type -> Resolution).
        retry_policy: attempts, total time, backoff and the longest inline Retry-After wait.
        default_headers: headers for every request (Accept, a version pin ...).
        secret_params: query parameters to mask in logs, beyond the usual secret-looking names.
        parallel_reads: per-ticket reads overlapped at most (``each``), never more than the budget's concurrency.

    Args:
        settings: the connection.
        runtime: broker URL (for the shared budget), transport, key namespace, sleep and clocks.
    """

    budget_defaults: ClassVar[BudgetLimits] = BudgetLimits()
    resolutions: ClassVar[Mapping[ResolutionKey, Resolution]] = {}
    retry_policy: ClassVar[RetryPolicy] = RetryPolicy()
    default_headers: ClassVar[Mapping[str, str]] = {}
    secret_params: ClassVar[tuple[str, ...]] = ()
    parallel_reads: ClassVar[int] = 4

    def __init__(self, settings: ConnectionSettings, *, runtime: HttpRuntime | None = None) -> None:
        super().__init__(settings)
        self.runtime = runtime or HttpRuntime()
        self.http: HttpClient = self.build_client()
        self._metadata: VendorMetadata | None = None
        self._metadata_lock = threading.Lock()
        self._remembered: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._remembered_lock = threading.Lock()

    def metadata(self, *, refresh: bool = False) -> VendorMetadata:
        """The vendor's metadata (see ``load_metadata``), loaded on first use and cached until ``refresh``."""
        with self._metadata_lock:
            if self._metadata is None or refresh:
                self._metadata = self.load_metadata()
            return self._metadata

    @abc.abstractmethod
    def load_metadata(self) -> VendorMetadata:
        """Read the vendor's statuses, priorities, picklists, queues and groups."""

    def build_client(self, base_url: str | None = None) -> HttpClient:
        """A client with this connector's auth, hooks and defaults (another ``base_url``: e.g. a vendor zone)."""
        return build_http_client(
            self.settings,
            auth=self.auth(),
            hooks=self,
            resolutions=self.resolutions,
            budget_defaults=self.vendor_budget(self.options),
            retry=self.retry_policy,
            headers=self.default_headers,
            secret_params=self.secret_params,
            base_url=base_url,
            runtime=self.runtime,
        )

    @classmethod
    def vendor_budget(cls, options: ConnectorOptions) -> BudgetLimits:
        """The vendor's limits for a connection with these options: ``budget_defaults`` unless overridden.

        Override when they depend on the connection (e.g. the vendor plan named in ``options``).
        """
        return cls.budget_defaults

    @classmethod
    def budget_limits(cls, settings: ConnectionSettings) -> BudgetLimits:
        """The limits a connection's budget enforces: its ``rate_budget`` over the vendor's (for ``status``).

        Raises:
            ConfigError: the connection's options are invalid.
        """
        options = read_options(cls.options_model, settings.options, connection=settings.name)
        return BudgetLimits.resolve(settings.rate_budget, cls.vendor_budget(options))

    @abc.abstractmethod
    def auth(self) -> httpx.Auth | None:
        """The vendor's auth, from ``self.settings.secrets`` (see ``connectors.auth``).

        Raises:
            ConfigError: a credential is missing.
        """

    # -- helpers for the verbs ---------------------------------------------------------------------------------------

    @property
    def overlap(self) -> timedelta:
        """How far behind a watermark an incremental read starts (settings ``overlap``, else the class default)."""
        if self.settings.overlap is not None:
            return self.settings.overlap
        return timedelta(seconds=self.default_overlap_seconds)

    def read_from(self, since: datetime | None) -> datetime | None:
        """Where an incremental read starts: ``since`` minus the overlap window (None: a full backfill)."""
        return since - self.overlap if since is not None else None

    def page_size(self, default: int, maximum: int) -> int:
        """The configured ``page_size`` (else ``default``), never above the vendor's ``maximum``."""
        return max(1, min(self.settings.page_size or default, maximum))

    def each(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``work`` done for every item, in order, overlapped on a few threads (the budget still paces each request).

        At most ``parallel_reads`` run at once, and never more than the budget lets be in flight per endpoint. Every
        thread runs in a copy of the caller's context, so requests are counted where the caller counts them. The
        first failure is raised once the others have finished or been cancelled.
        """
        concurrency = self.budget_limits(self.settings).concurrency
        workers = min(self.parallel_reads, concurrency or self.parallel_reads, len(items))
        if workers <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"psabridge-{self.name}") as pool:
            futures = [pool.submit(contextvars.copy_context().run, work, item) for item in items]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()
                raise

    def remembered(self, key: tuple[Any, ...], read: Callable[[], T]) -> T:
        """``read()``, or what it gave for ``key`` lately: a page completed again after a rate limit is not re-read.

        Keys name the resource and the vendor's change marker of its ticket, so a ticket that changed is read anew.
        """
        with self._remembered_lock:
            if key in self._remembered:
                self._remembered.move_to_end(key)
                found: T = self._remembered[key]
                return found
        value = read()
        with self._remembered_lock:
            self._remembered[key] = value
            while len(self._remembered) > _REMEMBERED:
                self._remembered.popitem(last=False)
        return value

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()


class ChangeRun:
    """One incremental read: drops records already returned in this run and keeps the watermark.

    A record counts as already returned when the same id came with the same update time; a newer version of a
    record (changed while we paged) is returned again, since it is news. The watermark only moves forward; with
    ``ordered=False`` (pages not ordered by update time, e.g. by id) pages before the last carry the run's start,
    because a later page may still hold older changes, and the last page carries the newest time seen.

    Memory stays flat however long the run: in update-time order only the ids at the newest time can come back
    unchanged; otherwise a repeat can only come from the shift of records between neighbouring pages (an insert
    before the cursor of a page-number listing), so the ids of the last ``window_pages`` pages are remembered.

    Args:
        since: the watermark the run started from (None: a backfill).
        external_id: the vendor id of a raw record.
        updated_at: when the vendor last changed a raw record.
        ordered: whether pages come in update-time order.
        window_pages: how many recent pages an unordered run remembers.
    """

    def __init__(
        self,
        *,
        since: datetime | None,
        external_id: Callable[[RawRecord], str],
        updated_at: Callable[[RawRecord], datetime | None],
        ordered: bool,
        window_pages: int = 2,
    ) -> None:
        self.since = since
        self.newest = since
        self._id = external_id
        self._updated = updated_at
        self._ordered = ordered
        self._seen: dict[str, datetime | None] = {}
        self._pages: deque[dict[str, datetime | None]] = deque(maxlen=max(1, window_pages))
        self.returned = 0

    @property
    def remembered(self) -> int:
        """How many ids the run holds for de-duplication (bounded, not growing with the run)."""
        return len(self._seen) + sum(len(page) for page in self._pages)

    def _already(self, key: str, updated: datetime | None) -> bool:
        if self._ordered:
            return key in self._seen and self._seen[key] == updated
        return any(key in page and page[key] == updated for page in self._pages)

    def page(self, records: Iterable[RawRecord], *, last: bool, request_count: int = 1) -> Page:
        """The ``Page`` to yield for one fetched page of raw records."""
        fresh: list[RawRecord] = []
        this_page: dict[str, datetime | None] = {}
        for record in records:
            key = self._id(record)
            updated = self._updated(record)
            if self._already(key, updated) or this_page.get(key, ...) == updated:
                continue
            this_page[key] = updated
            fresh.append(record)
            if updated is not None and (self.newest is None or updated > self.newest):
                self.newest = updated
        self.returned += len(fresh)
        if self._ordered:
            self._seen.update(this_page)
            if self.newest is not None:
                newest = self.newest
                self._seen = {k: v for k, v in self._seen.items() if v is not None and v >= newest}
        else:
            self._pages.append(this_page)
        watermark = self.newest if (self._ordered or last) else self.since
        return Page(records=fresh, watermark=watermark, request_count=request_count)


def counted_pages(pages: Iterator[FetchedPage], *, before: int = 0) -> Iterator[tuple[FetchedPage, int]]:
    """Each fetched page with the requests fetching it took (retries included; ``before`` added to the first)."""
    extra = before
    while True:
        with counting() as count:
            fetched = next(pages, None)
        if fetched is None:
            return
        yield fetched, count.value + extra
        extra = 0


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (a bulk filter's list of ids, kept to a URL's length)."""
    return [items[start : start + size] for start in range(0, len(items), max(1, size))]


def numeric_id(external_id: str, vendor: str) -> int:
    """A ticket id of a vendor whose ids are integers.

    Raises:
        PermanentError: it is not one (a retry would not help).
    """
    if not str(external_id).isdigit():
        raise PermanentError(f"{external_id!r} is not a {vendor} ticket id")
    return int(external_id)
