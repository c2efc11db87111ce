"""Linking, the stored side of mirroring: plan on a ticket's links, open new mirrors' links, record a created mirror.

Ingest, outbox and reconcile use it. Planning keeps each link's sync state in step with the actions it plans. The
decisions themselves (what flows across a link, which tickets get a mirror) are mirror.py's pure functions;
every function here runs inside the caller's transaction, so a link's state commits with the actions it accounts for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from psabridge.errors import BugError
from psabridge.model import Action, Ticket
from psabridge.store import Session
from psabridge.store import links as link_store
from psabridge.store.links import LinkState, MirrorLink
from psabridge.store.tickets import load_ticket
from psabridge.sync.context import SyncContext
from psabridge.sync.mirror import MIRROR_FIELDS, Side, link_marker, new_mirror, plan_side

__all__ = ["mark_creating", "mirror_link", "open_mirrors", "plan_link", "plan_links", "record_mirror"]


def plan_link(
    ctx: SyncContext,
    session: Session,
    ticket: Ticket,
    link: MirrorLink,
    *,
    integration_user: str | None,
    emit: bool = True,
) -> tuple[list[Action], MirrorLink]:
    """Mirror actions for a ticket on one of its links (as source or target); stores the link's new sync state.

    Returns the actions and the link as it now is. A disabled link, or one whose mirror does not exist yet (its
    creation carries the current state), plans nothing. With ``emit`` False (an echo) only the last seen values move.
    """
    settings = ctx.link(link.name)
    if settings is None or not link.is_created:
        return [], link
    side: Side = "from" if link.source_key == ticket.key else "to"
    other_key = link.target_key if side == "from" else link.source_key
    assert other_key is not None  # a created link knows both sides
    planned, state = plan_side(
        settings, link.sync, side, ticket, other_key=other_key, integration_user=integration_user, emit=emit
    )
    link_store.set_sync(session, link.id, state)
    return planned, replace(link, sync=state)


def plan_links(
    ctx: SyncContext,
    session: Session,
    ticket: Ticket,
    links: list[MirrorLink],
    *,
    integration_user: str | None,
    emit: bool = True,
) -> list[Action]:
    """Mirror actions for a ticket on each of its links (see plan_link)."""
    actions: list[Action] = []
    for link in links:
        planned, _ = plan_link(ctx, session, ticket, link, integration_user=integration_user, emit=emit)
        actions.extend(planned)
    return actions


def open_mirrors(ctx: SyncContext, session: Session, ticket: Ticket, links: list[MirrorLink]) -> list[Action]:
    """CreateMirror for each configured link whose ``from`` the ticket matches and that has no mirror of it yet.

    The link row is made in the same transaction (pending); a concurrent ingest of the same ticket finds it there
    and plans nothing, so one mirror is made per ticket and target connection.
    """
    mirrored = {link.target_connection for link in links if link.source_key == ticket.key}
    actions: list[Action] = []
    for settings in ctx.settings.links:
        if settings.to.connection in mirrored:
            continue
        action = new_mirror(settings, ticket)
        if action is None:
            continue
        _, new = link_store.ensure_link(
            session,
            name=settings.name,
            source_key=ticket.key,
            source_connection=ticket.connection,
            target_connection=settings.to.connection,
            marker=link_marker(ticket.key, settings.to.connection),
        )
        if new:
            actions.append(action)
        mirrored.add(settings.to.connection)
    return actions


def mirror_link(session: Session, source_key: str, target_connection: str) -> MirrorLink:
    """The link of a mirror being created.

    Raises:
        BugError: there is none (a CreateMirror is only planned together with its link row).
    """
    link = link_store.link_for(session, source_key, target_connection)
    if link is None:
        raise BugError(f"no link row for {source_key} -> {target_connection}")
    return link


def mark_creating(session: Session, link: MirrorLink) -> None:
    """The target is being asked to create the mirror (committed first: the answer may be lost)."""
    link_store.set_state(session, link.id, LinkState.CREATING)


def record_mirror(
    ctx: SyncContext,
    session: Session,
    source: Ticket,
    target_connection: str,
    *,
    target_external_id: str,
    target_key: str,
    seen_to: dict[str, Any],
) -> list[Action]:
    """The mirror exists: record it on the link, both sides in step; plan carrying the source's notes and time entries.

    Args:
        ctx: the sync context.
        session: the transaction that marks the write-back done.
        source: the source ticket as the mirror was made from.
        target_connection: where the mirror was made.
        target_external_id: the mirror's vendor id.
        target_key: the mirror's ticket key.
        seen_to: the mirrored fields as the new mirror holds them.
    """
    link = mirror_link(session, source.key, target_connection)
    source_data = source.model_dump(mode="json")
    created = link_store.record_created(
        session,
        link.id,
        target_external_id=target_external_id,
        target_key=target_key,
        sync={"from": {name: source_data.get(name) for name in MIRROR_FIELDS}, "to": seen_to},
    )
    current = load_ticket(session, source.key) or source
    user = ctx.connector(source.connection).integration_user()
    return plan_links(ctx, session, current, [created], integration_user=user)
