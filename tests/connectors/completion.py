"""A check every vendor's mapping test runs: tickets built from list pages map as the tickets read by id do."""

from __future__ import annotations

from psabridge.connectors.base import Connector
from psabridge.mapping import Mapper, MappingContext
from psabridge.vendordata import VendorMetadata


def check_pages_map_as_tickets_read_by_id(
    connector: Connector, mapper: Mapper, context: MappingContext, metadata: VendorMetadata
) -> int:
    """Complete every page of a backfill as new tickets and compare each mapped ticket with ``get_ticket``'s.

    Then complete the same pages again with what was built as the stored copies: nothing is changed, nothing read.
    Returns how many tickets were compared.
    """
    compared = 0
    for page in connector.iter_changes(None):
        completion = connector.complete_page(page.records, {})
        ids = [connector.external_id_of(record) for record in page.records]
        assert [connector.external_id_of(full) for full in completion.full] == ids
        for full in completion.full:
            by_id = connector.get_ticket(connector.external_id_of(full))
            built, read = mapper.inbound(full, context, metadata), mapper.inbound(by_id, context, metadata)
            assert built.ticket == read.ticket, connector.external_id_of(full)
            assert built.findings == read.findings
            compared += 1
        again = connector.complete_page(page.records, {connector.external_id_of(f): f for f in completion.full})
        assert (again.full, again.unchanged, again.request_count) == ([], tuple(ids), 0)
    return compared
