"""ConnectWise callbacks at the receiver: forged ones cost at most the key-fetch bound and never the ticket budget,
key URLs off the configured origin or path are never fetched, and a real callback is answered during a flood."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from psabridge.connectors.connectwise import ConnectWiseConnector
from psabridge.webhooks.app import REFUSED

from .conftest import (
    CW_HOST,
    CW_KEY_ID,
    KEY_FETCHES_PER_MINUTE,
    Receiver,
    cw_payload,
    cw_signature,
    encode,
    signed,
)

PATH = "/webhooks/msp-cw"


def key_url(key_id: str) -> str:
    return f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={key_id}"


def forged_callback(key_id: str) -> tuple[bytes, dict[str, str]]:
    """A callback naming ``key_id``, signed with a guess (a well-formed signature of the wrong key)."""
    body = encode(cw_payload(Metadata={"key_url": key_url(key_id)}))
    return body, {"Content-Type": "application/json", "x-content-signature": cw_signature(body, "a guess")}


def ticket_budget_used(receiver: Receiver) -> int | None:
    connector = receiver.connectors["msp-cw"]
    assert isinstance(connector, ConnectWiseConnector)
    return connector.http.budget.snapshot().used


def flood(receiver: Receiver, callbacks: list[tuple[bytes, dict[str, str]]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        async with receiver.client() as client:
            return list(await asyncio.gather(*(client.post(PATH, content=b, headers=h) for b, h in callbacks)))

    return asyncio.run(run())


def test_sixty_parallel_forged_callbacks_fetch_at_most_the_bound_and_never_touch_the_ticket_budget(
    receiver: Receiver,
) -> None:
    answers = flood(receiver, [forged_callback(f"forged-{n}") for n in range(60)])

    assert [(a.status_code, a.json()) for a in answers] == [(401, REFUSED)] * 60
    assert len(receiver.keys.fetches) == KEY_FETCHES_PER_MINUTE
    assert receiver.keys.other == [] and ticket_budget_used(receiver) == 0
    assert receiver.inbox() == [] and receiver.jobs() == []


def test_forged_callbacks_naming_one_key_id_share_one_fetch_and_an_unknown_id_is_not_asked_again(
    receiver: Receiver,
) -> None:
    answers = flood(receiver, [forged_callback("forged-same") for _ in range(60)])
    later = flood(receiver, [forged_callback("forged-same") for _ in range(5)])

    assert {a.status_code for a in answers + later} == {401}
    assert [r.url.params["id"] for r in receiver.keys.fetches] == ["forged-same"]


def test_bad_signatures_over_a_real_key_cost_one_fetch_not_one_each(receiver: Receiver) -> None:
    answers = flood(receiver, [forged_callback(CW_KEY_ID) for _ in range(100)])

    assert {a.status_code for a in answers} == {401}
    assert len(receiver.keys.fetches) == 1 and ticket_budget_used(receiver) == 0


def test_a_real_callback_is_answered_while_forged_key_fetches_hang(receiver: Receiver) -> None:
    warm = encode(cw_payload())
    assert receiver.post("connectwise", warm, signed("connectwise", warm)).status_code == 202  # its key is cached
    receiver.keys.hold()  # ConnectWise now hangs on every unknown key id
    forged_fetches = KEY_FETCHES_PER_MINUTE - 1  # the warm-up's fetch counts against the same bound

    async def scenario() -> tuple[httpx.Response, int, int, list[httpx.Response]]:
        async with receiver.client() as client:
            tasks = [asyncio.create_task(client.post(PATH, content=b, headers=h))
                     for b, h in (forged_callback(f"flood-{n}") for n in range(60))]  # fmt: skip
            for _ in range(1000):  # until the rest of the fetch bound hangs at ConnectWise
                if receiver.keys.held >= forged_fetches:
                    break
                await asyncio.sleep(0.01)
            real = encode(cw_payload())
            answer = await client.post(PATH, content=real, headers=signed("connectwise", real))
            hanging, answered = receiver.keys.held, receiver.keys.answered_held
            receiver.keys.release()
            return answer, hanging, answered, list(await asyncio.gather(*tasks))

    try:
        answer, hanging, answered_before, rest = asyncio.run(scenario())
    finally:
        receiver.keys.release()

    assert answer.status_code == 202 and answer.json()["duplicate"] is False
    assert (hanging, answered_before) == (forged_fetches, 0)  # answered while every forged fetch still hung
    assert [r.status_code for r in rest] == [401] * 60
    assert len(receiver.keys.fetches) == KEY_FETCHES_PER_MINUTE
    assert [job[1] for job in receiver.jobs()] == ["493", "493"]


@pytest.mark.parametrize(
    "url",
    [
        f"https://{CW_HOST}:8443/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",  # another port
        f"https://{CW_HOST}:443@evil.test/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",
        f"http://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",  # another scheme
        f"https://evil.test/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",
        f"https://{CW_HOST}.evil.test/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",
        f"https://user:pw@{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",
        f"https://{CW_HOST}/v4_6_release/apis/3.0/service/tickets?id={CW_KEY_ID}",  # another path
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails/../../apis/3.0?id={CW_KEY_ID}",
        f"https://{CW_HOST}/../system/callbackkey/index.rails?id={CW_KEY_ID}",
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}#frag",
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}&redirect=http://x",
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id=a&id=b",
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id=../../x",
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails",
        f"https://{CW_HOST}:99999/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}",
        f"https://{CW_HOST}/v4_6_release/system/callbackkey/index.rails?id={CW_KEY_ID}\u00e9",
        "not a url",
    ],
)
def test_a_key_url_off_the_configured_origin_or_key_path_is_refused_without_a_fetch(
    receiver: Receiver, url: str
) -> None:
    body = encode(cw_payload(Metadata={"key_url": url}))

    response = receiver.post("connectwise", body, signed("connectwise", body))

    assert (response.status_code, response.json()) == (401, REFUSED)
    assert receiver.keys.fetches == [] and receiver.keys.other == []
    assert receiver.inbox() == []


@pytest.mark.parametrize(
    "url",
    [
        f"https://{CW_HOST}/v4_6_release//system/callbackkey/index.rails?id={CW_KEY_ID}",  # as in Nango's test
        f"https://{CW_HOST.upper()}:443/v2025_1/system/callbackkey/index.rails?companyName=msp&id={CW_KEY_ID}",
    ],
)
def test_key_urls_as_connectwise_writes_them_are_fetched_from_the_configured_origin(
    receiver: Receiver, url: str
) -> None:
    body = encode(cw_payload(Metadata={"key_url": url}))

    assert receiver.post("connectwise", body, signed("connectwise", body)).status_code == 202
    [fetch] = receiver.keys.fetches
    assert (fetch.url.scheme, fetch.url.host, fetch.url.port) == ("https", CW_HOST, None)
    assert "//" not in fetch.url.path and fetch.url.params["id"] == CW_KEY_ID
    assert "authorization" not in fetch.headers and "clientid" not in fetch.headers
