"""The connector contract: what every vendor connector offers the rest of psabridge, in vendor-neutral terms.

A connector speaks the vendor's API and holds every quirk of it. It hands out *raw* vendor records (dicts exactly as
the vendor's API returns them, plus clearly named extras such as notes); mapping turns those into canonical tickets
and canonical changes back into a vendor *patch* (a dict of vendor fields in the vendor's native value shapes);
the connector sends that patch with the vendor's verb.

Extras a connector adds to a raw ticket from ``get_ticket`` sit under keys starting with ``_psa_`` so they can never
clash with a vendor field: ``_psa_notes`` (list of raw note/journal records), ``_psa_time_entries``,
``_psa_description`` (where the vendor keeps the body elsewhere), ``_psa_extra`` (anything else, e.g. stats).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from psabridge.connectors.options import ConnectorOptions, read_options
from psabridge.connectors.requestcount import counting
from psabridge.errors import NotFoundError, PermanentError
from psabridge.model import NoteKind, System
from psabridge.settings import ConnectionSettings
from psabridge.vendordata import RawRecord, VendorMetadata

__all__ = [
    "EXTRA_DESCRIPTION",
    "EXTRA_EXTRA",
    "EXTRA_NOTES",
    "EXTRA_TIME_ENTRIES",
    "Connector",
    "NewTimeEntry",
    "Page",
    "PageCompletion",
    "WebhookEvent",
]

EXTRA_NOTES = "_psa_notes"
EXTRA_TIME_ENTRIES = "_psa_time_entries"
EXTRA_DESCRIPTION = "_psa_description"
EXTRA_EXTRA = "_psa_extra"


@dataclass(frozen=True)
class Page:
    """One page of changed tickets.

    Attributes:
        records: raw vendor records as the list endpoint returned them, de-duplicated within the run.
        watermark: the high-water mark that is safe to store once this page (and every page before it) is committed;
            the next run starts from it minus the connector's overlap window.
        request_count: HTTP requests this page cost (for budgets and benchmarks; every retry counted).
    """

    records: list[RawRecord]
    watermark: datetime | None
    request_count: int = 1


@dataclass(frozen=True)
class PageCompletion:
    """What ``Connector.complete_page`` made of one list page.

    Attributes:
        full: full raw tickets (as ``get_ticket`` returns them) of the records that changed, in page order.
        unchanged: external ids whose list record equals the stored one (nothing to map or store), and of tickets
            gone since the page was listed.
        request_count: HTTP requests the completion sent (bulk pages plus per-ticket reads, every retry counted).
    """

    full: list[RawRecord]
    unchanged: tuple[str, ...] = ()
    request_count: int = 0


_MISSING = object()


@dataclass(frozen=True)
class WebhookEvent:
    """What a verified webhook delivery says happened. A hint only: the ticket is re-fetched, never read from here.

    Attributes:
        external_id: the vendor id of the ticket concerned.
        event: what happened, as far as the vendor said.
        delivery_id: a stable id of this delivery (the vendor's, or a hash of the raw body), for inbox de-duplication.
        occurred_at: when the vendor says it happened, if it said.
    """

    external_id: str
    event: Literal["created", "updated", "deleted", "note"]
    delivery_id: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class NewTimeEntry:
    """Time to log on a ticket, in vendor-neutral terms (the connector builds the vendor's body)."""

    minutes: int
    note: str
    started_at: datetime
    who: str | None = None
    billable: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Connector(abc.ABC):
    """One configured connection to one vendor system.

    Implementations live in ``connectors/<vendor>.py``, one class per vendor, built over the shared HTTP layer. All
    methods are synchronous and safe to call from several threads; errors are raised from ``psabridge.errors``
    (RetryLaterError, RateLimitedError, AuthError/ConfigError, PermanentError subclasses), carrying the vendor's
    message.
    """

    system: ClassVar[System]
    #: The model of this vendor's ``connections[].options`` (see connectors/options.py).
    options_model: ClassVar[type[ConnectorOptions]] = ConnectorOptions
    #: How far behind the stored watermark an incremental read starts, so records updated while we paged are not lost.
    default_overlap_seconds: ClassVar[float] = 300.0

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.options = read_options(self.options_model, settings.options, connection=settings.name)

    @property
    def name(self) -> str:
        """The connection name from config."""
        return self.settings.name

    # -- reading -------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def iter_changes(self, since: datetime | None) -> Iterator[Page]:
        """Stream tickets changed at or after ``since`` (minus the overlap window), page by page, oldest first.

        ``None`` means a full backfill. Uses the vendor's own filter, a stable order and the vendor's largest page,
        and de-duplicates within the run. Never holds more than one page in memory.
        """

    @abc.abstractmethod
    def get_ticket(self, external_id: str) -> RawRecord:
        """One ticket with everything the canonical model needs, extras under ``_psa_*`` keys.

        Raises:
            NotFoundError: the vendor has no such ticket (or hides it from us).
        """

    def complete_page(self, records: list[RawRecord], stored: Mapping[str, RawRecord]) -> PageCompletion:
        """Full raw tickets (the shape ``get_ticket`` returns) for the records of one list page that changed.

        ``stored`` holds the raw record last stored for each external id of the page that the store knows (an
        absent id is new). A record whose list fields equal the stored ones is reported unchanged and costs nothing.
        A record whose fields changed while the vendor's change marker did not (``reuse_extras``: a field computed
        from the clock, say) keeps the stored record's sub-resources and costs nothing either. The rest are read
        by ``read_full``: by id here; vendors override it to build full records from the list record itself (list
        fields asked for up front) plus sub-resources read in bulk for the whole page, reading per ticket only what
        the vendor has no bulk read for.
        """
        built: dict[str, RawRecord] = {}
        unchanged: list[str] = []
        to_read: list[RawRecord] = []
        for record in records:
            external_id = self.external_id_of(record)
            previous = stored.get(external_id)
            if previous is not None and self.list_fields_equal(record, previous):
                unchanged.append(external_id)
                continue
            reused = self.reuse_extras(record, previous) if previous is not None else None
            if reused is not None:
                built[external_id] = reused
            else:
                to_read.append(record)
        with counting() as count:
            built.update(self.read_full(to_read) if to_read else {})
        full: list[RawRecord] = []
        same = set(unchanged)
        for record in records:
            external_id = self.external_id_of(record)
            if external_id in built:
                full.append(built[external_id])
            elif external_id not in same:
                unchanged.append(external_id)  # deleted since the page was listed: the next page or reconcile sees it
        return PageCompletion(full=full, unchanged=tuple(unchanged), request_count=count.value)

    def list_fields_equal(self, record: RawRecord, previous: RawRecord) -> bool:
        """Whether a list record says nothing new about the stored full record (default: every list field equal)."""
        return all(previous.get(key, _MISSING) == value for key, value in record.items())

    def reuse_extras(self, record: RawRecord, previous: RawRecord) -> RawRecord | None:
        """The full record from a changed list record and the stored one, when its sub-resources cannot have changed.

        Only a vendor whose list record is the whole ticket AND whose change marker is a version counter that every
        change moves (ServiceNow's sys_mod_count) may return it with the stored ``_psa_*`` extras; None (the
        default) reads it again. An update time cannot serve: vendors keep it to the second, and a change made in the
        same second as the stored copy (a technician's note just after our own write) would be lost
        (freescout-help-desk/freescout#1311 is this failure in another sync tool).
        """
        return None

    def read_full(self, records: list[RawRecord]) -> dict[str, RawRecord]:
        """Full raw tickets for list records that changed, by external id; a ticket gone since is left out.

        The default reads each by id (``get_ticket``).
        """
        full: dict[str, RawRecord] = {}
        for record in records:
            external_id = self.external_id_of(record)
            try:
                full[external_id] = self.get_ticket(external_id)
            except NotFoundError:
                continue  # deleted since the page was listed
        return full

    @abc.abstractmethod
    def list_notes(self, external_id: str) -> list[RawRecord]:
        """The ticket's notes (journal entries, conversations) as raw vendor records, oldest first."""

    @abc.abstractmethod
    def metadata(self, *, refresh: bool = False) -> VendorMetadata:
        """Statuses (per board), priorities, picklists, queues and groups; cached until ``refresh``."""

    @abc.abstractmethod
    def external_id_of(self, record: RawRecord) -> str:
        """The vendor id of a raw ticket record."""

    @abc.abstractmethod
    def updated_at_of(self, record: RawRecord) -> datetime | None:
        """When the vendor last changed a raw ticket record (UTC-aware)."""

    # -- writing -------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_ticket(self, fields: RawRecord, *, marker: str) -> RawRecord:
        """Create a ticket from vendor-shaped ``fields`` (from mapping.outbound), tagged with ``marker``.

        The marker goes where ``find_by_marker`` can find it again (an external-reference field, or the description),
        so a create whose response was lost is found, not repeated. Returns the created raw record.
        """

    @abc.abstractmethod
    def find_by_marker(self, marker: str) -> str | None:
        """The external id of a ticket this bridge created with ``marker``, or None."""

    @abc.abstractmethod
    def update_ticket(self, external_id: str, patch: RawRecord) -> RawRecord:
        """Change fields with the vendor's verb (JSON Patch, PATCH with id in body, PATCH, PUT).

        ``patch`` is vendor-shaped, from mapping.outbound. Returns the record as the vendor answered. When the vendor
        rejects a value as unknown, the metadata cache is refreshed before the error is raised.
        """

    @abc.abstractmethod
    def add_note(self, external_id: str, text: str, *, kind: NoteKind, marker: str) -> RawRecord:
        """Add a note (internal, public or resolution) carrying ``marker``; returns the raw note as created."""

    @abc.abstractmethod
    def add_time_entry(self, external_id: str, entry: NewTimeEntry, *, marker: str) -> RawRecord:
        """Log time against the ticket, carrying ``marker`` in its notes; returns the raw time entry."""

    # -- webhooks ------------------------------------------------------------------------------------------------

    @abc.abstractmethod
    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify a webhook delivery over its raw body and say which ticket it concerns.

        Raises:
            WebhookVerificationError: signature or secret missing, wrong or stale.
            PermanentError: the body is not a delivery this connector understands.
        """

    def register_webhooks(self, url: str) -> dict[str, dict[str, Any]]:
        """Create or update the vendor's subscriptions that send changes to ``url`` (``psabridge webhooks register``).

        Returns each subscription by name: its ``id``, ``url``, ``active`` and ``change`` (created, updated or
        unchanged). A vendor without a subscription API raises: ``webhook_setup`` says what to set up by hand.

        Raises:
            PermanentError: the vendor has no subscription API (ServiceNow, Freshservice).
        """
        raise PermanentError(
            f"{self.settings.system.value} has no API to register webhooks; set it up by hand as "
            "`psabridge webhooks register` prints",
            connection=self.name,
        )

    def webhooks(self) -> list[dict[str, Any]]:
        """The vendor's subscriptions this connection registered (``psabridge webhooks list``), as registered."""
        return []

    def webhook_setup(self, url: str) -> str | None:
        """For a vendor without a subscription API: the exact settings to paste in its admin UI (None: has one)."""
        return None

    def integration_user(self) -> str | None:
        """The vendor identity our writes are made as (member, resource, user or agent id), if known.

        Ingest treats notes authored by it as echoes even when a marker was stripped by the vendor.
        """
        return self.options.integration_user

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook: connectors without resources need not override it
        """Release HTTP connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
