"""Synthetic people and enterprises in the local registries, and a browser that signs up."""
from __future__ import annotations

import io
import random
import uuid
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from idp.core import Core
from realname.registry.importer import Importer
from realname.testdata import make_credit_code, make_id_number
from tests.rp import Browser, parse_form


@dataclass(frozen=True)
class Citizen:
    name: str
    id_number: str


def registered_citizen(core: Core, name: str = "王小明") -> Citizen:
    """A new synthetic person in the local population registry."""
    citizen = Citizen(name, make_id_number(random.Random(uuid.uuid4().int)))
    Importer(core.engine, core.vault).run(io.StringIO(f"name,id_number\n{citizen.name},{citizen.id_number}\n"))
    return citizen


def registered_enterprise(core: Core, name: str, status: str = "active") -> str:
    """A new synthetic enterprise in the local legal-entity registry; its credit code."""
    code = make_credit_code(random.Random(uuid.uuid4().int))
    Importer(core.engine, core.vault).run(io.StringIO(
        f"credit_code,name,legal_representative,status\n{code},{name},王小明,{status}\n"))
    return code


def sign_up(browser: Browser, url: str, citizen: Citizen, *, username: str | None = None,
            password: str = "correct horse battery", phone: str = "13800000001", stop_at: str) -> httpx.Response:
    """From an authorization URL: the login page, its sign-up link, the form submitted."""
    page = browser.follow(browser.get(url), stop_at)
    assert "/signup" in page.text, "the login page links to sign-up"
    page = browser.get(urljoin(str(page.url), parse_form(page.text)["action"].replace("/login", "/signup")))
    return submit_signup(browser, page, citizen, username=username, password=password, phone=phone, stop_at=stop_at)


def submit_signup(browser: Browser, page: httpx.Response, citizen: Citizen, *, username: str | None = None,
                  password: str = "correct horse battery", phone: str = "13800000001",
                  stop_at: str) -> httpx.Response:
    form = parse_form(page.text)
    assert form["action"].endswith("/signup"), f"expected the sign-up page, got {page.status_code}"
    response = browser.http.post(urljoin(str(page.url), form["action"]), data={
        "csrf_token": form["csrf_token"], "name": citizen.name, "id_number": citizen.id_number,
        "phone": phone, "username": username or f"u{uuid.uuid4().hex[:10]}", "password": password})
    return browser.follow(response, stop_at)


def outcome(page: httpx.Response) -> str | None:
    """The sign-up page's outcome marker (e.g. signup.no_match), if it shows one."""
    import re

    found = re.search(r'data-outcome="([^"]+)"', page.text)
    return found.group(1) if found else None


@dataclass(frozen=True)
class VerifiedAccount:
    id: str
    username: str
    password: str
    citizen: Citizen


def verified_account(core: Core, name: str = "陈静") -> VerifiedAccount:
    """An account raised to L2 by a match in the local population registry."""
    from realname.pii import IdNumber

    citizen = registered_citizen(core, name=name)
    username = f"v{uuid.uuid4().hex[:10]}"
    profile = core.accounts.create(username, "correct horse battery", name=name)
    result = core.verification.upgrade(profile.id, name=name, id_number=IdNumber.parse(citizen.id_number),
                                       address="198.51.100.1")
    assert result.status == "verified"
    return VerifiedAccount(profile.id, username, "correct horse battery", citizen)
