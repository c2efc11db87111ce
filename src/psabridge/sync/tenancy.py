"""The outbox's tenant guard: refuses a write that would carry one tenant's ticket into another tenant's system.

Checked in the transaction that claims an action, before anything is sent (sync/outbox.py). What a write carries
and where it lands, by action:

* a new mirror (CreateMirror) carries its source ticket; it lands in the target connection under the company the
  link names (``to.tenant``) when that connection holds several tenants;
* a write a link planned (``origin`` ``mirror:<link>:...``) carries the ticket on the link's other side; it lands
  in the ticket it writes to, whose owner is its connection's tenant, or its company's;
* any other write (a rule's note, a routing) carries the ticket itself: it is refused only when the stored ticket
  names a tenant other than its single-tenant connection's, or when it would move the ticket to another tenant's
  company (``tenant`` among the fields set).

The rule itself (who owns what, what may meet) is psabridge/tenancy.py, shared with config check.
"""

from __future__ import annotations

from psabridge.model import Action, CreateMirror, SetFields, split_ticket_key
from psabridge.settings import ConnectionSettings
from psabridge.store import Session, tickets
from psabridge.store import links as link_store
from psabridge.sync.context import SyncContext
from psabridge.tenancy import Owner, cross_tenant, owner_of, target_owner

__all__ = ["REFUSED", "write_refusal"]

_LINKED = "mirror:"  # the origin prefix of a link's actions (sync.mirror.mirror_origin)

REFUSED = "refused"
"""The audit outcome of a write the guard refused (``status`` counts them per target connection)."""


def write_refusal(ctx: SyncContext, session: Session, action: Action) -> str | None:
    """Why ``action`` must not be sent (it would cross tenants), or None when it may.

    Pages and channel posts carry no ticket into a vendor system and are not checked.
    """
    target = _connection(ctx, action.target)
    if target is None:
        return None  # a notifier, not a connection
    if isinstance(action, CreateMirror):
        return _mirror_refusal(ctx, session, action, target)
    if action.origin.startswith(_LINKED):
        return _linked_refusal(ctx, session, action, target)
    if target.tenant is None and not target.tenants:
        return None  # the MSP's own system: any tenant's ticket may be written there, so nothing to look up
    stored = tickets.tenants_of(session, [action.ticket_key])
    tenant = stored.get(action.ticket_key)
    if target.tenant is not None and tenant is not None and tenant != target.tenant:
        return (
            f"cross-tenant write refused: {action.ticket_key} is stored as tenant {tenant!r}'s but {target.name} "
            f"belongs to tenant {target.tenant!r}"
        )
    return _moves_company(action, target, owner_of(target, tenant))


def _connection(ctx: SyncContext, name: str) -> ConnectionSettings | None:
    return next((conn for conn in ctx.settings.connections if conn.name == name), None)


def _mirror_refusal(ctx: SyncContext, session: Session, action: CreateMirror, target: ConnectionSettings) -> str | None:
    source_connection, _ = split_ticket_key(action.ticket_key)
    source_conn = _connection(ctx, source_connection)
    stored = tickets.tenants_of(session, [action.ticket_key])
    link = ctx.link(action.link)
    if action.ticket_key not in stored or source_conn is None or link is None:
        return None  # the handler reports these (nothing to copy, or no link)
    data = owner_of(source_conn, stored[action.ticket_key])
    destination = target_owner(link, target)
    if not cross_tenant(data, destination):
        return None
    return (
        f"cross-tenant write refused: link {link.name!r} would copy {action.ticket_key} ({data}) into "
        f"{target.name} ({destination}); fix the link's from/to tenant, then replay or purge this dead letter"
    )


def _linked_refusal(ctx: SyncContext, session: Session, action: Action, target: ConnectionSettings) -> str | None:
    """A write a link planned: the other side's owner against the owner of the ticket written to."""
    link = next(
        (
            found
            for found in link_store.links_of(session, action.ticket_key)
            if action.origin.startswith(f"{_LINKED}{found.name}:")
        ),
        None,
    )
    if link is None:
        return f"cross-tenant check failed: {action.origin!r} names no link of {action.ticket_key}; not written"
    other_key = link.source_key if link.target_key == action.ticket_key else link.target_key
    if other_key is None:
        return None
    stored = tickets.tenants_of(session, [action.ticket_key, other_key])
    other_conn = _connection(ctx, split_ticket_key(other_key)[0])
    data = owner_of(other_conn, stored.get(other_key)) if other_conn is not None else Owner(None)
    tenant = stored.get(action.ticket_key)
    settings = ctx.link(link.name)
    if action.ticket_key not in stored and link.target_key == action.ticket_key and settings is not None:
        destination = target_owner(settings, target)  # a mirror just made, not ingested yet: the link's company
    else:
        destination = owner_of(target, tenant)
    if cross_tenant(data, destination):
        return (
            f"cross-tenant write refused: {action.type} from {other_key} ({data}) into {action.ticket_key} "
            f"({destination}) over link {link.name!r}"
        )
    return _moves_company(action, target, data)


def _moves_company(action: Action, target: ConnectionSettings, data: Owner) -> str | None:
    """A field change that would move the ticket under another tenant's company."""
    if not isinstance(action, SetFields) or "tenant" not in action.fields:
        return None
    value = action.fields["tenant"]
    destination = owner_of(target, str(value) if value is not None else None)
    if cross_tenant(data, destination):
        return (
            f"cross-tenant write refused: setting {action.ticket_key}'s tenant to {value!r} would give {data}'s "
            f"ticket to {destination}"
        )
    return None
