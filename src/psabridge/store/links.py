"""The links repository: mirror pairs (a source ticket and its mirror in another connection) and their sync state.

A link row is made ``pending`` in the transaction that plans the mirror, is ``creating`` while the mirror is being
created at the target and ``created`` once the mirror is known; its ``sync`` holds, per side, the last values seen
and the notes and time entries already carried (sync/mirror.py describes the shape). One row per source ticket and
target connection, enforced by a unique constraint, so concurrent ingests cannot make two mirrors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from psabridge.store.models import Link, utcnow
from psabridge.store.statements import chunks, insert_ignore

__all__ = [
    "LinkState",
    "MirrorLink",
    "count_created_by_name",
    "ensure_link",
    "get_link",
    "link_for",
    "links_of",
    "links_of_many",
    "links_touching",
    "record_created",
    "set_state",
    "set_sync",
]


class LinkState(StrEnum):
    """Where a mirror pair stands."""

    PENDING = "pending"
    """Planned: the CreateMirror action is in the outbox."""
    CREATING = "creating"
    """The target was asked to create the mirror (its answer may have been lost: the marker finds it again)."""
    CREATED = "created"
    """The mirror exists and its key is known."""


@dataclass(frozen=True)
class MirrorLink:
    """A mirror pair as stored.

    Attributes:
        id: the row id.
        name: the configured link (settings ``links[].name``).
        source_key: the source ticket.
        source_connection: its connection.
        target_connection: where the mirror lives.
        target_external_id: the mirror's vendor id, once known.
        target_key: the mirror's ticket key, once known.
        state: see LinkState.
        marker: written into the mirror, so a create whose answer was lost is found again.
        sync: per-side last seen values and carried notes and time entries.
    """

    id: int
    name: str
    source_key: str
    source_connection: str
    target_connection: str
    target_external_id: str | None
    target_key: str | None
    state: LinkState
    marker: str
    sync: dict[str, Any]

    @property
    def is_created(self) -> bool:
        """The mirror exists and is known."""
        return self.state == LinkState.CREATED and self.target_key is not None


def _link(row: Link) -> MirrorLink:
    return MirrorLink(
        id=row.id,
        name=row.name,
        source_key=row.source_key,
        source_connection=row.source_connection,
        target_connection=row.target_connection,
        target_external_id=row.target_external_id,
        target_key=row.target_key,
        state=LinkState(row.state),
        marker=row.marker,
        sync=dict(row.sync or {}),
    )


def links_of(session: Session, key: str) -> list[MirrorLink]:
    """Mirror links the ticket takes part in, as source or as target."""
    query = sa.select(Link).where(sa.or_(Link.source_key == key, Link.target_key == key)).order_by(Link.id)
    return [_link(row) for row in session.scalars(query)]


def links_of_many(session: Session, keys: Sequence[str]) -> dict[str, list[MirrorLink]]:
    """``links_of`` for many tickets in one query per chunk of keys: key -> its links (tickets without are absent)."""
    found: dict[str, list[MirrorLink]] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        query = sa.select(Link).where(sa.or_(Link.source_key.in_(chunk), Link.target_key.in_(chunk)))
        wanted = set(chunk)
        for row in session.scalars(query.order_by(Link.id)):
            link = _link(row)
            for key in {link.source_key, link.target_key} & wanted:
                found.setdefault(str(key), []).append(link)
    return found


def links_touching(session: Session, connections: Sequence[str]) -> list[MirrorLink]:
    """Mirror links with a side in any of these connections."""
    query = sa.select(Link).where(
        sa.or_(Link.source_connection.in_(connections), Link.target_connection.in_(connections))
    )
    return [_link(row) for row in session.scalars(query.order_by(Link.id))]


def get_link(session: Session, link_id: int) -> MirrorLink | None:
    """One link by id, or None."""
    row = session.get(Link, link_id)
    return _link(row) if row is not None else None


def link_for(session: Session, source_key: str, target_connection: str) -> MirrorLink | None:
    """The link of a source ticket into a target connection, or None."""
    query = sa.select(Link).where(Link.source_key == source_key, Link.target_connection == target_connection)
    row = session.scalars(query).one_or_none()
    return _link(row) if row is not None else None


def ensure_link(
    session: Session, *, name: str, source_key: str, source_connection: str, target_connection: str, marker: str
) -> tuple[MirrorLink, bool]:
    """The link of a source ticket into a target connection, created (pending) if there is none; and whether new.

    The unique constraint on (source, target connection) makes this exact under concurrency: one mirror per pair.
    """
    now = utcnow()
    inserted = insert_ignore(
        session,
        Link.__table__,
        [
            {
                "name": name,
                "source_key": source_key,
                "source_connection": source_connection,
                "target_connection": target_connection,
                "state": LinkState.PENDING.value,
                "marker": marker,
                "sync": {},
                "created_at": now,
                "updated_at": now,
            }
        ],
        "id",
    )
    link = link_for(session, source_key, target_connection)
    assert link is not None  # inserted now, or by whoever was first
    return link, bool(inserted)


def _row(session: Session, link_id: int) -> Link:
    row = session.get(Link, link_id)
    if row is None:
        raise LookupError(f"no link {link_id}")
    return row


def set_sync(session: Session, link_id: int, sync: dict[str, Any]) -> None:
    """Store a link's new sync state (in the transaction that planned the actions it accounts for)."""
    _row(session, link_id).sync = sync


def set_state(session: Session, link_id: int, state: LinkState) -> None:
    """Move a link to ``state``."""
    _row(session, link_id).state = state.value


def record_created(
    session: Session, link_id: int, *, target_external_id: str, target_key: str, sync: dict[str, Any]
) -> MirrorLink:
    """The mirror exists: its id and key, ``created``, and both sides' starting values; returns the link now."""
    row = _row(session, link_id)
    row.target_external_id = target_external_id
    row.target_key = target_key
    row.state = LinkState.CREATED.value
    row.sync = sync
    return _link(row)


def count_created_by_name(session: Session) -> Counter[str]:
    """Created mirrors per configured link."""
    query = sa.select(Link.name, sa.func.count()).where(Link.state == LinkState.CREATED).group_by(Link.name)
    return Counter({str(name): int(count) for name, count in session.execute(query)})
