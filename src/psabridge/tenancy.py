"""Tenant isolation rules: whose a connection's records are, and which writes and links would cross tenants. Pure.

Every record belongs to an *owner*: the tenant (MSP client) of a single-tenant connection (``connections[].tenant``),
the tenant of its company in a connection with several (``connections[].tenants``; a company under no tenant is
*unknown*), or the MSP itself for a connection with neither (the MSP's own system). A record may be written where its
owner is the same tenant, or where either side is the MSP's own: mirrors only ever go between a tenant's own
connections and the MSP's. An unknown owner never matches: it could be anyone's.

The outbox enforces this on every write (sync/tenancy.py); ``link_problems`` is the same rule as config check applies
it to the configured links, before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import JsonValue

from psabridge.settings import ConnectionSettings, LinkEnd, LinkSettings, Settings

__all__ = [
    "Owner",
    "cross_tenant",
    "link_problems",
    "named_tenants",
    "owner_of",
    "source_owners",
    "target_owner",
]


@dataclass(frozen=True)
class Owner:
    """Whose data a record is, or whose system (or company) a write lands in.

    Attributes:
        tenant: the tenant key; None for the MSP's own, or when unknown.
        msp: the MSP's own system (a connection with no tenant and no tenants).
    """

    tenant: str | None
    msp: bool = False

    def __str__(self) -> str:
        if self.msp:
            return "the MSP's own"
        return f"tenant {self.tenant!r}" if self.tenant is not None else "no known tenant"


MSP = Owner(None, msp=True)
UNKNOWN = Owner(None)


def is_multi_tenant(conn: ConnectionSettings) -> bool:
    """The connection holds several clients' records, told apart by company (``tenants``)."""
    return conn.tenant is None and bool(conn.tenants)


def owner_of(conn: ConnectionSettings, tenant: str | None) -> Owner:
    """The owner of a record of ``conn`` whose tenant (as mapped, or as written to it) is ``tenant``.

    A single-tenant connection's records are its tenant's whatever the record says; a multi-tenant connection's are
    their company's tenant (unknown without one); a connection with neither is the MSP's own.
    """
    if conn.tenant is not None:
        return Owner(conn.tenant)
    if conn.tenants:
        known = tenant is not None and tenant in conn.tenants.values()
        return Owner(tenant) if known else UNKNOWN
    return MSP


def cross_tenant(data: Owner, destination: Owner) -> bool:
    """Whether writing ``data``'s record into ``destination`` would move it to another (or an unknown) tenant."""
    if data.msp or destination.msp:
        return False
    return data.tenant is None or data.tenant != destination.tenant


def _tenant_value(value: JsonValue | None) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def end_tenants(end: LinkEnd) -> list[str]:
    """The tenants a link end names: ``tenant``, ``where: {tenant: ...}`` and ``fields: {tenant: ...}``."""
    named = [end.tenant] if end.tenant is not None else []
    return named + _tenant_value(end.where.get("tenant")) + _tenant_value(end.fields.get("tenant"))


def source_owners(link: LinkSettings, conn: ConnectionSettings) -> list[Owner] | None:
    """The owners of the tickets a link can select in its ``from`` connection.

    None: any of its clients' (the link does not select by tenant in a multi-tenant connection).
    """
    if not is_multi_tenant(conn):
        return [owner_of(conn, None)]
    selected = [end.tenant] if (end := link.from_).tenant is not None else []
    selected += _tenant_value(end.where.get("tenant"))
    if not selected:
        return None
    if end.tenant is not None and end.where.get("tenant") is not None:
        selected = [t for t in selected if t == end.tenant]  # both must match: only tenants named by both
    return [owner_of(conn, t) for t in dict.fromkeys(selected)]


def target_owner(link: LinkSettings, conn: ConnectionSettings) -> Owner:
    """Whose system (or company, in a multi-tenant connection) a link's new mirrors are created in."""
    fields_tenant = link.to.fields.get("tenant")
    tenant = str(fields_tenant) if fields_tenant is not None else link.to.tenant  # fields win (sync/mirror.py)
    return owner_of(conn, tenant)


def named_tenants(settings: Settings) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every tenant key the settings name outside ``tenants:``, with where: (field path, tenant)."""
    for index, conn in enumerate(settings.connections):
        if conn.tenant is not None:
            yield ("connections", index, "tenant"), conn.tenant
        for company, tenant in conn.tenants.items():
            yield ("connections", index, "tenants", company), tenant
    for index, link in enumerate(settings.links):
        for side, end in (("from", link.from_), ("to", link.to)):
            if end.tenant is not None:
                yield ("links", index, side, "tenant"), end.tenant
            for tenant in _tenant_value(end.where.get("tenant")):
                yield ("links", index, side, "where", "tenant"), tenant
            for tenant in _tenant_value(end.fields.get("tenant")):
                yield ("links", index, side, "fields", "tenant"), tenant


def link_problems(settings: Settings) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Links that can move one tenant's tickets into another's system or company: (field path, why)."""
    connections = {conn.name: conn for conn in settings.connections}
    for index, link in enumerate(settings.links):
        source, target = connections.get(link.from_.connection), connections.get(link.to.connection)
        if source is None or target is None:
            continue  # an unknown connection is reported on its own
        destination = target_owner(link, target)
        owners = source_owners(link, source)
        if is_multi_tenant(target) and destination.tenant is None:
            known = ", ".join(sorted(set(target.tenants.values())))
            named = end_tenants(link.to)
            why = (
                f"names tenant {named[-1]!r}, which has no company in {target.name}'s tenants ({known})"
                if named
                else f"writes into {target.name}, which holds several tenants' companies: name the one new mirrors "
                f"belong to with to.tenant ({known})"
            )
            yield ("links", index, "to", "tenant"), f"link {link.name!r} {why}"
            continue
        if destination.msp:
            continue  # into the MSP's own system: any client's ticket may go there
        if owners is None:
            yield (
                ("links", index, "from"),
                f"link {link.name!r} can copy any client's ticket of {source.name} (it holds several tenants) into "
                f"{destination}'s {target.name}: select by tenant with from.tenant: {destination.tenant}",
            )
            continue
        for owner in owners:
            if cross_tenant(owner, destination):
                where = ("links", index, "to", "tenant") if link.to.tenant is not None else ("links", index, "to")
                yield (
                    where,
                    f"link {link.name!r} would copy {owner}'s tickets of {source.name} into {destination}'s "
                    f"{target.name}: a link never crosses tenants",
                )
