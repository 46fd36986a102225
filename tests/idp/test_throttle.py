"""Brute-force protection: failures per account and per address, shared by every worker, locks that
double and expire, the same answer for unknown usernames, and the token endpoint throttled too."""
from __future__ import annotations

import random
import re
import time
import uuid
from typing import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from idp.throttle import Limit, Throttle
from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.rp import parse_form

SMALL = {"throttle_account_failures": 2, "throttle_address_failures": 1000, "throttle_lock": 1,
         "throttle_lock_max": 2, "throttle_window": 60}


def _address() -> str:
    """A loopback address of this test's own, so no other test's failures count against it."""
    return f"127.{random.randint(1, 254)}.{random.randint(0, 254)}.{random.randint(1, 254)}"


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """A browser-like client speaking from an address of its own."""
    client = httpx.Client(transport=httpx.HTTPTransport(local_address=_address()), follow_redirects=False, timeout=30)
    yield client
    client.close()


def _login_page(http: httpx.Client, url: str) -> tuple[str, str]:
    """Follow an authorization request to its login page: the form's path and CSRF token."""
    response = http.get(url)
    while response.is_redirect:
        response = http.get(str(response.url.join(response.headers["location"])))
    form = parse_form(response.text)
    return form["action"], form["csrf_token"]


def _post(http: httpx.Client, worker: str, action: str, csrf: str, username: str, password: str) -> httpx.Response:
    return http.post(worker + action, data={"csrf_token": csrf, "username": username, "password": password})


def _message(page: httpx.Response) -> str:
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    assert found, page.text
    return found.group(1)


def _on(worker: str, url: str) -> str:
    """The same URL on another worker of the deployment."""
    return worker + url[len("{0.scheme}://{0.netloc}".format(urlsplit(url))):]


def test_a_lock_out_is_seen_by_every_worker_and_expires(make_rp: RpFactory, person: Person, http: httpx.Client,
                                                        another_worker: WorkerFactory) -> None:
    first, second = another_worker(**SMALL), another_worker(**SMALL)
    action, csrf = _login_page(http, _on(first, make_rp().authorization().url))
    assert _post(http, first, action, csrf, person.username, "wrong 1").status_code == 200
    locked = _post(http, first, action, csrf, person.username, "wrong 2")  # the second failure starts the lock
    assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
    # The other worker refuses even the right password while the lock lasts, without checking it.
    refused = _post(http, second, action, csrf, person.username, person.password)
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 1
    time.sleep(1.1)
    assert _post(http, second, action, csrf, person.username, person.password).status_code == 303


def test_the_lock_doubles_with_each_failure_past_the_limit(make_rp: RpFactory, person: Person,
                                                           http: httpx.Client, another_worker: WorkerFactory) -> None:
    worker = another_worker(**SMALL)
    action, csrf = _login_page(http, _on(worker, make_rp().authorization().url))
    for _ in range(2):
        _post(http, worker, action, csrf, person.username, "wrong")
    time.sleep(1.1)
    again = _post(http, worker, action, csrf, person.username, "wrong")
    assert again.status_code == 429 and again.headers["retry-after"] == "2"


def test_an_unknown_username_is_locked_and_answered_like_a_known_one(make_rp: RpFactory, person: Person,
                                                                     http: httpx.Client,
                                                                     another_worker: WorkerFactory) -> None:
    worker = another_worker(**SMALL)
    action, csrf = _login_page(http, _on(worker, make_rp().authorization().url) + "&ui_locales=en")
    answers = []
    for username in (person.username, f"nobody{uuid.uuid4().hex[:8]}"):
        pages = [_post(http, worker, action, csrf, username, "wrong") for _ in range(3)]
        answers.append([(page.status_code, page.headers.get("retry-after"), _message(page)) for page in pages])
    assert answers[0] == answers[1]
    assert answers[0][2] == (429, "1", "Too many failed attempts. For your safety, please try again in 1 seconds.")


def test_a_success_forgets_the_accounts_failures(make_rp: RpFactory, person: Person, http: httpx.Client,
                                                 another_worker: WorkerFactory) -> None:
    worker = another_worker(**SMALL)
    rp = make_rp()
    action, csrf = _login_page(http, _on(worker, rp.authorization().url))
    _post(http, worker, action, csrf, person.username, "wrong")
    assert _post(http, worker, action, csrf, person.username, person.password).status_code == 303
    action, csrf = _login_page(http, _on(worker, rp.authorization(prompt="login").url))
    assert _post(http, worker, action, csrf, person.username, "wrong").status_code == 200  # 1 failure, not 2


def test_too_many_failures_from_one_address_lock_that_address_only(make_rp: RpFactory, person: Person,
                                                                   another_worker: WorkerFactory) -> None:
    worker = another_worker(**(SMALL | {"throttle_account_failures": 100, "throttle_address_failures": 3}))
    url = _on(worker, make_rp().authorization().url)
    with httpx.Client(transport=httpx.HTTPTransport(local_address=_address())) as guesser, \
            httpx.Client(transport=httpx.HTTPTransport(local_address=_address())) as neighbour:
        action, csrf = _login_page(guesser, url)
        statuses = [_post(guesser, worker, action, csrf, f"user{n}{uuid.uuid4().hex[:6]}", "guess").status_code
                    for n in range(3)]
        assert statuses == [200, 200, 429]  # three accounts, one address
        assert _post(guesser, worker, action, csrf, person.username, person.password).status_code == 429
        action, csrf = _login_page(neighbour, url)
        assert _post(neighbour, worker, action, csrf, person.username, person.password).status_code == 303


def _token(http: httpx.Client, worker: str, client_id: str, secret: str) -> httpx.Response:
    return http.post(worker + "/token", auth=(client_id, secret),
                     data={"grant_type": "authorization_code", "code": "not-a-code",
                           "redirect_uri": "https://rp.example.gov.cn/cb"})


def test_failed_client_authentication_is_throttled_at_the_token_endpoint(make_rp: RpFactory, http: httpx.Client,
                                                                         another_worker: WorkerFactory) -> None:
    first, second = another_worker(**SMALL), another_worker(**SMALL)
    rp = make_rp()
    assert [_token(http, first, rp.client_id, "wrong").status_code for _ in range(2)] == [401, 401]
    locked = _token(http, second, rp.client_id, "wrong")  # the lock is shared by every worker
    assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
    assert locked.json() == {"error": "slow_down",
                             "error_description": "too many failed client authentications; retry after 1 seconds"}
    time.sleep(1.1)
    assert _token(http, second, rp.client_id, "wrong").status_code == 401  # the lock ended; checked again


def test_a_lock_never_refuses_a_client_that_authenticates(make_rp: RpFactory, http: httpx.Client,
                                                          another_worker: WorkerFactory) -> None:
    # the whole address is locked (one misconfigured application behind a shared egress), yet the
    # clients that prove their credentials there go on working (once the worker holds them), and
    # each failure is still refused
    worker = another_worker(**(SMALL | {"throttle_lock": 30, "throttle_lock_max": 60, "throttle_address_failures": 2}))
    misconfigured, neighbour = make_rp(), make_rp()
    assert _token(http, worker, neighbour.client_id, neighbour.client_secret).json()["error"] == "invalid_grant"
    assert [_token(http, worker, misconfigured.client_id, "wrong").status_code for _ in range(2)] == [401, 401]
    assert _token(http, worker, misconfigured.client_id, "wrong").status_code == 429
    assert _token(http, worker, neighbour.client_id, "wrong").status_code == 429  # the address is locked
    for rp in (misconfigured, neighbour):
        assert _token(http, worker, rp.client_id, rp.client_secret).json()["error"] == "invalid_grant"  # authenticated
    assert _token(http, worker, misconfigured.client_id, "wrong").status_code == 429  # and still locked
    # a client id the worker does not hold would cost a database read: a locked address is refused first
    assert _token(http, worker, uuid.uuid4().hex, "guess").status_code == 429


def test_a_client_locked_at_one_address_is_not_locked_at_another(make_rp: RpFactory, http: httpx.Client,
                                                                 another_worker: WorkerFactory) -> None:
    worker = another_worker(**SMALL)
    rp = make_rp()
    for _ in range(2):
        _token(http, worker, rp.client_id, "wrong")
    assert _token(http, worker, rp.client_id, "wrong").status_code == 429
    with httpx.Client(transport=httpx.HTTPTransport(local_address=_address())) as elsewhere:
        assert _token(elsewhere, worker, rp.client_id, "wrong").status_code == 401


def test_the_throttle_api_counts_locks_and_forgets(provider: Provider) -> None:
    throttle = Throttle(provider.core.store, Limit(2, 10, 0.3, 0.6), Limit(3, 10, 0.3, 0.6))
    keys = throttle.keys("totp", account=uuid.uuid4().hex, address=_address())
    assert throttle.failure(keys).allowed
    locked = throttle.failure(keys)
    assert not locked.allowed and locked.retry_after == 1 and not throttle.check(keys).allowed
    time.sleep(0.35)
    assert throttle.check(keys).allowed
    throttle.success(keys)  # forgets the account's two failures, not the address's
    assert not throttle.failure(keys).allowed  # the address's third failure locks it ...
    assert throttle.check(keys[:1]).allowed and not throttle.check(keys[1:]).allowed  # ... not the account (1 of 2)
