"""A delivery the receiver queued is claimed as it is recorded: restarts do not queue it again, and one the broker
refused is left to recovery at once."""

from __future__ import annotations

from typing import Any

from psabridge.sync.recovery import recover

from .conftest import CONNECTION, PAYLOADS, TICKETS, Receiver, encode, signed


def test_restarts_leave_a_delivery_the_receiver_queued_alone(receiver: Receiver) -> None:
    body = encode(PAYLOADS["freshservice"]())
    assert receiver.post("freshservice", body, signed("freshservice", body)).status_code == 202
    for _ in range(5):
        recover(receiver.ctx, polls=False)
    assert receiver.jobs() == [(CONNECTION["freshservice"], TICKETS["freshservice"])]  # the receiver's, only


def test_a_delivery_the_broker_refused_is_queued_by_the_next_recovery(receiver: Receiver) -> None:
    queue: Any = receiver.ctx.queue
    ingest = queue.ingest

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionError("broker unreachable")

    queue.ingest = down
    body = encode(PAYLOADS["freshservice"]())
    assert receiver.post("freshservice", body, signed("freshservice", body)).status_code == 202  # recorded
    queue.ingest = ingest
    recover(receiver.ctx, polls=False)
    recover(receiver.ctx, polls=False)
    assert receiver.jobs() == [(CONNECTION["freshservice"], TICKETS["freshservice"])]
