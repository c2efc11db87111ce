"""The shared HTTP client on the wire: retries, Retry-After, the resolution table, hooks, budget and log lines."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from psabridge.connectors.auth import BasicAuth
from psabridge.connectors.budget import Budget, BudgetLimits, Charge, Window
from psabridge.connectors.http import (
    DefaultHooks,
    FailureType,
    Resolution,
    ResponseAction,
    RetryPolicy,
    default_endpoint,
    parse_retry_after,
)
from psabridge.errors import (
    AuthError,
    BugError,
    ConfigError,
    ConflictError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryLaterError,
)

from .conftest import BASE_URL, ClientFactory, FakeTime

TICKET = {"id": 1, "subject": "Printer offline"}


# --- retries ----------------------------------------------------------------------------------------------------------


def test_5xx_is_retried_with_growing_jittered_backoff_then_succeeds(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets/1").mock(
        side_effect=[httpx.Response(503), httpx.Response(500), httpx.Response(200, json=TICKET)]
    )
    client = make_client(retry=RetryPolicy(backoff_initial=1.0, jitter=0.5))

    assert client.request_json("GET", "tickets/1").data == TICKET
    assert route.call_count == 3
    first, second = fake_time.sleeps
    assert 1.0 <= first <= 1.5
    assert 2.0 <= second <= 2.5


def test_timeouts_and_connection_failures_are_retried_then_succeed(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.get("/tickets/1").mock(
        side_effect=[
            httpx.ReadTimeout("no answer"),
            httpx.ConnectError("refused"),
            httpx.RemoteProtocolError("server disconnected"),
            httpx.Response(200, json=TICKET),
        ]
    )
    assert make_client().request("GET", "tickets/1").json() == TICKET
    assert route.call_count == 4


def test_attempts_are_bounded(router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime) -> None:
    route = router.get("/tickets/1").mock(return_value=httpx.Response(502, text="upstream down"))
    client = make_client(retry=RetryPolicy(max_attempts=4, max_elapsed=1000))

    with pytest.raises(RetryLaterError) as caught:
        client.request("GET", "tickets/1")

    assert route.call_count == 4
    assert len(fake_time.sleeps) == 3
    error = caught.value
    assert type(error) is RetryLaterError
    assert error.status == 502
    assert error.connection == "test-conn"
    assert error.vendor_message == "upstream down"
    assert error.details["attempt"] == 4


def test_total_time_is_bounded_even_with_attempts_left(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets/1").mock(return_value=httpx.Response(503))
    # Waits of about 2 s then 4 s: the second would end past 5 s in all, so it is not made.
    client = make_client(retry=RetryPolicy(max_attempts=10, max_elapsed=5, backoff_initial=2, jitter=0.1))

    with pytest.raises(RetryLaterError):
        client.request("GET", "tickets/1")

    assert route.call_count == 2
    assert sum(fake_time.sleeps) <= 5


def test_other_4xx_are_not_retried(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/tickets/1").mock(return_value=httpx.Response(400, json={"message": "bad"}))
    with pytest.raises(PermanentError):
        make_client().request("GET", "tickets/1")
    assert route.call_count == 1


# --- 429 and Retry-After ----------------------------------------------------------------------------------------------


def test_429_waits_the_seconds_retry_after_says(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=[])]
    )
    assert make_client().request_json("GET", "tickets").data == []
    assert route.call_count == 2
    assert len(fake_time.sleeps) == 1
    assert 7 <= fake_time.sleeps[0] <= 7.1


def test_429_waits_until_the_http_date_retry_after_names(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    when = format_datetime(fake_time.now() + timedelta(seconds=12), usegmt=True)
    router.get("/tickets").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json=[])]
    )
    make_client().request("GET", "tickets")
    assert 12 <= fake_time.sleeps[0] <= 12.1


def test_429_accepts_an_iso_datetime_retry_after(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    when = (fake_time.now() + timedelta(seconds=9)).isoformat().replace("+00:00", "Z")
    router.get("/tickets").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": when}), httpx.Response(200, json=[])]
    )
    make_client().request("GET", "tickets")
    assert 9 <= fake_time.sleeps[0] <= 9.1


def test_429_longer_than_the_inline_maximum_raises_rate_limited_at_once(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "120"}, json={"message": "slow down"})
    )
    client = make_client(retry=RetryPolicy(inline_max_wait=30))

    with pytest.raises(RateLimitedError) as caught:
        client.request("GET", "tickets")

    assert route.call_count == 1
    assert fake_time.sleeps == []
    assert caught.value.retry_after == 120
    assert caught.value.status == 429
    assert caught.value.vendor_message == "slow down"


def test_429_without_retry_after_backs_off_and_finally_raises_rate_limited(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(return_value=httpx.Response(429))
    with pytest.raises(RateLimitedError) as caught:
        make_client(retry=RetryPolicy(max_attempts=3)).request("GET", "tickets")
    assert route.call_count == 3
    assert len(fake_time.sleeps) == 2
    assert caught.value.retry_after == 0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Fri, 20 Nov 2026 15:01:00 GMT", 60.0),
        ("2026-11-20T15:00:30Z", 30.0),
        ("2026-11-20T15:00:30", 30.0),
        ("2026-11-20T14:00:00Z", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None, fake_time: FakeTime) -> None:
    assert parse_retry_after(value, fake_time.now()) == expected


# --- the resolution table ---------------------------------------------------------------------------------------------


def test_401_is_an_auth_error_at_once_with_exactly_one_request(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(return_value=httpx.Response(401, json={"message": "User Not Authenticated"}))
    with pytest.raises(AuthError) as caught:
        make_client().request("GET", "tickets")

    assert route.call_count == 1
    assert fake_time.sleeps == []
    error = caught.value
    assert isinstance(error, ConfigError)
    assert (error.status, error.connection, error.vendor_message) == (401, "test-conn", "User Not Authenticated")
    assert "User Not Authenticated" in str(error)
    assert error.details["failure"] == "config"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, PermanentError), (403, PermanentError), (404, NotFoundError), (409, ConflictError), (422, PermanentError)],
)
def test_error_bodies_become_typed_errors_carrying_the_vendor_message(
    status: int, error_type: type[Exception], router: respx.MockRouter, make_client: ClientFactory
) -> None:
    router.patch("/tickets/9").mock(return_value=httpx.Response(status, json={"message": f"vendor says {status}"}))
    with pytest.raises(error_type) as caught:
        make_client().request("PATCH", "tickets/9", json={"status": 4})
    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.vendor_message == f"vendor says {status}"
    assert error.status == status
    assert error.details["method"] == "PATCH"
    assert error.details["path"] == "/api/v1/tickets/9"


def test_an_unexpected_redirect_is_a_bug(router: respx.MockRouter, make_client: ClientFactory) -> None:
    router.get("/tickets").mock(return_value=httpx.Response(302, headers={"Location": "https://elsewhere/"}))
    with pytest.raises(BugError):
        make_client().request("GET", "tickets")


def test_a_body_that_is_not_json_is_retried(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/tickets").mock(
        side_effect=[httpx.Response(200, text='{"tickets": [{"id": 1}, {"id'), httpx.Response(200, json=[TICKET])]
    )
    assert make_client().request_json("GET", "tickets").data == [TICKET]
    assert route.call_count == 2


class VendorHooks(DefaultHooks):
    """A vendor that reports errors as {"errors": [...]}, signals 'busy' in a 500 and errors inside 200 bodies."""

    def classify(self, response: httpx.Response) -> Resolution | None:
        if response.status_code == 500 and "thread threshold" in response.text:
            return Resolution.retry("vendor busy: thread limit", refused=True)
        if response.status_code == 200 and response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict) and body.get("status") == "failure":
                return Resolution.fail(PermanentError, "the vendor refused the write")
        return None

    def error_message(self, response: httpx.Response) -> str | None:
        body = response.json()
        return "; ".join(body.get("errors") or [body.get("error", "")])


def test_a_vendor_classify_hook_makes_its_own_refusals_transient(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.post("/tickets").mock(
        side_effect=[
            httpx.Response(500, json={"errors": ["Itgenatr005: thread threshold exceeded"]}),
            httpx.Response(201, json={"itemId": 7}),
        ]
    )
    # A POST is sent again only because the hook says the vendor refused it before doing anything.
    reply = make_client(hooks=VendorHooks()).request_json("POST", "tickets", json={"title": "x"})
    assert reply.data == {"itemId": 7}
    assert route.call_count == 2


def test_a_vendor_error_inside_a_200_body_becomes_a_typed_error(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    router.patch("/tickets/3").mock(return_value=httpx.Response(200, json={"status": "failure", "error": "ACL"}))
    with pytest.raises(PermanentError) as caught:
        make_client(hooks=VendorHooks()).request("PATCH", "tickets/3", json={})
    assert caught.value.vendor_message == "ACL"
    assert caught.value.status == 200


def test_a_vendor_error_message_hook_keeps_every_vendor_message(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    body = {"errors": ["The startDateTime cannot be edited", "status is Canceled"]}
    router.post("/TimeEntries").mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(PermanentError) as caught:
        make_client(hooks=VendorHooks()).request("POST", "TimeEntries", json={})
    assert caught.value.vendor_message == "The startDateTime cannot be edited; status is Canceled"


def test_a_vendor_table_entry_overrides_the_default(router: respx.MockRouter, make_client: ClientFactory) -> None:
    router.get("/tickets").mock(return_value=httpx.Response(403, json={"message": "role lacks access"}))
    table = {403: Resolution(ResponseAction.FAIL, FailureType.CONFIG, ConfigError, "grant the agent role")}
    with pytest.raises(ConfigError) as caught:
        make_client(table=table).request("GET", "tickets")
    assert "grant the agent role" in str(caught.value)
    assert caught.value.vendor_message == "role lacks access"


def test_an_ignored_status_is_handed_back(router: respx.MockRouter, make_client: ClientFactory) -> None:
    router.get("/tickets/5").mock(return_value=httpx.Response(404, json={"item": None}))
    response = make_client(table={404: Resolution(ResponseAction.IGNORE)}).request("GET", "tickets/5")
    assert response.status_code == 404


# --- non-idempotent requests ------------------------------------------------------------------------------------------


def test_a_post_is_not_sent_again_after_a_5xx_or_read_timeout(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.post("/tickets/1/notes").mock(side_effect=[httpx.Response(500), httpx.ReadTimeout("slow")])
    client = make_client()
    with pytest.raises(RetryLaterError):
        client.request("POST", "tickets/1/notes", json={"text": "hi"})
    with pytest.raises(RetryLaterError):
        client.request("POST", "tickets/1/notes", json={"text": "hi"})
    assert route.call_count == 2


def test_a_post_is_sent_again_when_the_vendor_surely_did_nothing(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    route = router.post("/tickets/1/notes").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(201, json={"id": 5}),
        ]
    )
    assert make_client().request_json("POST", "tickets/1/notes", json={"text": "hi"}).data == {"id": 5}
    assert route.call_count == 3


def test_a_post_declared_idempotent_is_retried_like_a_get(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.post("/Tickets/query").mock(side_effect=[httpx.Response(503), httpx.Response(200, json={})])
    make_client().request("POST", "Tickets/query", json={"filter": []}, idempotent=True)
    assert route.call_count == 2


# --- log lines --------------------------------------------------------------------------------------------------------


def test_one_log_line_per_request_with_secrets_masked(
    router: respx.MockRouter, make_client: ClientFactory, captured_logs: list[dict[str, Any]]
) -> None:
    router.get("/tickets").mock(side_effect=[httpx.Response(503), httpx.Response(200, json=[])])
    client = make_client(auth=BasicAuth("agent-key-SECRET1", "SECRET2"), secret_params=("sig",))

    client.request("GET", "tickets", params={"api_key": "SECRET3", "token": "SECRET4", "sig": "SECRET5", "page": 2})

    lines = [entry for entry in captured_logs if entry["event"] == "http.request"]
    assert len(lines) == 2
    assert [(line["status"], line["attempt"], line["outcome"]) for line in lines] == [
        (503, 1, "retry"),
        (200, 2, "success"),
    ]
    for line in lines:
        assert line["connection"] == "test-conn"
        assert line["method"] == "GET"
        assert line["path"] == "/api/v1/tickets?api_key=***&token=***&sig=***&page=2"
        assert isinstance(line["duration_ms"], float)
    dumped = json.dumps(captured_logs, default=str)
    assert "SECRET" not in dumped
    assert "Basic" not in dumped


def test_a_transport_failure_is_logged_without_a_status(
    router: respx.MockRouter, make_client: ClientFactory, captured_logs: list[dict[str, Any]]
) -> None:
    router.get("/tickets").mock(side_effect=[httpx.ConnectTimeout("slow"), httpx.Response(200)])
    make_client().request("GET", "tickets")
    first = next(entry for entry in captured_logs if entry["event"] == "http.request")
    assert (first["status"], first["error"], first["outcome"]) == (None, "ConnectTimeout", "retry")


# --- budget and response hooks ----------------------------------------------------------------------------------------


class RateHeaderHooks(DefaultHooks):
    """A vendor that reports the account's remaining quota per response, and charges three credits per search."""

    def on_response(self, response: httpx.Response, budget: Budget) -> None:
        remaining = response.headers.get("X-Quota-Left")
        if remaining is not None:
            budget.observe("account", used=1000 - int(remaining), limit=1000, resets_in=60)

    def charge_of(self, request: httpx.Request, path: str) -> Charge:
        return Charge(3, ("search",)) if path == "/search" else Charge()


def test_a_hook_charges_credits_to_the_vendors_windows(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    router.get("/search").respond(json=[])
    router.get("/tickets").respond(json=[])
    windows = (Window("account", 1000, 60, every=True), Window("search", 6, 60))
    client = make_client(hooks=RateHeaderHooks(), budget=BudgetLimits(requests=100, per=60, windows=windows))

    client.request("GET", "search")
    client.request("GET", "tickets")

    assert [(u.window.name, u.used) for u in client.budget.snapshot().windows] == [
        ("budget", 4),
        ("account", 4),
        ("search", 3),
    ]


def test_a_response_hook_tells_the_budget_what_others_used_so_no_request_goes_over_the_vendor_quota(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(return_value=httpx.Response(200, json=[], headers={"X-Quota-Left": "0"}))
    windows = (Window("account", 1000, 60, every=True),)
    client = make_client(hooks=RateHeaderHooks(), budget=BudgetLimits(requests=1000, per=60, windows=windows))

    client.request("GET", "tickets")
    assert client.budget.remaining() == 0
    with pytest.raises(RateLimitedError) as caught:
        client.request("GET", "tickets")

    assert route.call_count == 1
    assert caught.value.details["source"] == "budget"
    assert 59 <= caught.value.retry_after <= 60


def test_a_full_budget_waits_inline_when_the_wait_is_short(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(return_value=httpx.Response(200, json=[]))
    client = make_client(budget=BudgetLimits(requests=2, per=10))
    for _ in range(3):
        client.request("GET", "tickets")
    assert route.call_count == 3
    assert 10 <= sum(fake_time.sleeps) <= 10.1


def test_a_full_budget_raises_rather_than_wait_past_the_inline_maximum(
    router: respx.MockRouter, make_client: ClientFactory, fake_time: FakeTime
) -> None:
    route = router.get("/tickets").mock(return_value=httpx.Response(200, json=[]))
    client = make_client(budget=BudgetLimits(requests=2, per=3600), retry=RetryPolicy(inline_max_wait=30))
    client.request("GET", "tickets")
    client.request("GET", "tickets")
    with pytest.raises(RateLimitedError) as caught:
        client.request("GET", "tickets")
    assert route.call_count == 2
    assert fake_time.sleeps == []
    assert caught.value.retry_after == pytest.approx(3600)


def test_the_configured_budget_wins_over_the_vendor_default(make_client: ClientFactory) -> None:
    from .conftest import make_settings

    settings = make_settings(rate_budget={"requests": 50, "per": "1m"})
    client = make_client(settings=settings, budget=BudgetLimits(requests=10_000, per=3600, concurrency=3))
    assert client.budget.limits == BudgetLimits(requests=50, per=60, concurrency=3)
    assert client.budget.remaining() == 50


# --- URLs -------------------------------------------------------------------------------------------------------------


def test_credentials_are_never_sent_to_another_host(router: respx.MockRouter, make_client: ClientFactory) -> None:
    with pytest.raises(PermanentError, match=r"evil\.example"):
        make_client().request("GET", "https://evil.example/steal")


def test_a_trusted_origin_may_be_added(make_client: ClientFactory) -> None:
    client = make_client()
    client.trust_origin("https://zone7.vendor.example/api/")
    with respx.mock(assert_all_mocked=True, assert_all_called=True) as mock:
        mock.get("https://zone7.vendor.example/api/Tickets/1").mock(return_value=httpx.Response(200))
        assert client.request("GET", "https://zone7.vendor.example/api/Tickets/1").status_code == 200


def test_relative_paths_join_the_base_url(router: respx.MockRouter, make_client: ClientFactory) -> None:
    route = router.get("/service/tickets").mock(return_value=httpx.Response(200))
    client = make_client()
    client.request("GET", "/service/tickets")
    client.request("GET", "service/tickets")
    assert [str(call.request.url) for call in route.calls] == [f"{BASE_URL}/service/tickets"] * 2


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [("/V1.0/Tickets/query", "Tickets"), ("/service/tickets/7", "service"), ("/api/v2/tickets", "api"), ("/", "/")],
)
def test_default_endpoint(path: str, endpoint: str) -> None:
    assert default_endpoint(path) == endpoint


def test_a_read_response_is_freed_without_the_cycle_collector(
    router: respx.MockRouter, make_client: ClientFactory
) -> None:
    """Each page's bytes go as soon as the page is dropped, not at the next full GC (httpx#3733): memory stays flat."""
    import gc
    import weakref

    router.get(f"{BASE_URL}/tickets").mock(return_value=httpx.Response(200, json={"items": [1, 2, 3]}))
    client = make_client()
    gc.disable()
    try:
        response = client.request("GET", "tickets")
        assert response.json() == {"items": [1, 2, 3]}
        alive = weakref.ref(response)
        del response
        assert alive() is None, "the response is kept alive by a reference cycle"
    finally:
        gc.enable()
