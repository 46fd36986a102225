"""TOTP and recovery codes: enrolment on the account page, the second step of a login, single use."""
from __future__ import annotations

import pyotp
from sqlalchemy import select

from idp import events
from idp.models import AuditEvent, RecoveryCode, TotpCredential
from tests.idp.conftest import Person, Provider, RpFactory, WorkerFactory
from tests.idp.mfa_steps import NOWHERE, account_post, answer, enrol_totp, security_page, step_time
from tests.rp import Browser, callback_params


def _at_level(provider: Provider, person: Person, level: int) -> None:
    provider.core.identities.raise_level(person.id, level, source="test")


def test_enrolment_shows_a_qr_code_and_ten_recovery_codes_and_seals_the_secret(
        provider: Provider, person: Person, browser: Browser) -> None:
    secret, codes = enrol_totp(provider, browser, person, step_time())
    assert len(codes) == 10 and len(set(codes)) == 10
    with provider.core.engine.connect() as connection:
        sealed = connection.execute(select(TotpCredential.secret_sealed).where(
            TotpCredential.account_id == person.id)).scalar_one()
        digests = connection.execute(select(RecoveryCode.code_digest).where(
            RecoveryCode.account_id == person.id)).scalars().all()
    assert secret.encode() not in sealed  # encrypted at rest
    assert len(digests) == 10 and not set(codes) & set(digests)  # digests, never the codes


def test_a_wrong_confirming_code_does_not_enrol(provider: Provider, person: Person, browser: Browser) -> None:
    page = account_post(provider, browser, security_page(provider, browser, person), "totp_begin")
    wrong = account_post(provider, browser, page, "totp_confirm", code="000000")
    assert wrong.status_code == 400 and "<svg" in wrong.text  # the same enrolment, asked again
    assert not provider.core.factors.totp.enrolled(person.id)


def test_a_client_asking_for_loa3_gets_a_second_factor_and_an_honest_id_token(
        provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    _at_level(provider, person, 3)
    now = step_time()
    secret, _codes = enrol_totp(provider, browser, person, now)
    rp = make_rp(first_party=True)
    auth = rp.authorization(acr_values="loa/3", prompt="login")
    page = browser.login(auth.url, person.username, person.password, stop_at=rp.redirect_uri, consent=None)
    assert "/mfa" in page.text  # the password alone is not enough
    done = answer(browser, page, rp.redirect_uri, method="otp", code=pyotp.TOTP(secret).at(now))
    body = rp.fetch_token(callback_params(done)["code"], auth.verifier)
    claims = rp.validate_id_token(body["id_token"], auth.nonce, body["access_token"])
    assert claims["acr"] == "loa/3"
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert abs(claims["auth_time"] - now) < 60


def test_an_accepted_code_is_refused_on_another_worker(provider: Provider, make_rp: RpFactory, person: Person,
                                                        another_worker: WorkerFactory) -> None:
    _at_level(provider, person, 3)
    now = step_time()
    owner = Browser()
    secret, _codes = enrol_totp(provider, owner, person, now)
    owner.close()
    other = another_worker()
    rp = make_rp(first_party=True)
    code = pyotp.TOTP(secret).at(now)
    first, second = Browser(), Browser()
    try:
        pages = [b.login(rp.authorization(acr_values="loa/3").url, person.username, person.password,
                         stop_at=rp.redirect_uri, consent=None) for b in (first, second)]
        assert "code" in callback_params(answer(first, pages[0], rp.redirect_uri, method="otp", code=code))
        refused = answer(second, pages[1], rp.redirect_uri, at=other, method="otp", code=code)
        assert refused.status_code == 400 and "/mfa" in refused.text
        later = answer(second, refused, rp.redirect_uri, at=other, method="otp", code=pyotp.TOTP(secret).at(now + 30))
        assert "code" in callback_params(later)  # the next step's code still works, on that worker
    finally:
        first.close()
        second.close()


def test_a_recovery_code_works_once(provider: Provider, make_rp: RpFactory, person: Person, browser: Browser) -> None:
    _at_level(provider, person, 3)
    _secret, codes = enrol_totp(provider, browser, person, step_time())
    rp = make_rp(first_party=True)
    page = browser.login(rp.authorization(acr_values="loa/3", prompt="login").url, person.username, person.password,
                         stop_at=rp.redirect_uri, consent=None)
    assert "code" in callback_params(answer(browser, page, rp.redirect_uri, method="recovery_code",
                                            code=codes[0].upper()))
    page = browser.login(rp.authorization(acr_values="loa/3", prompt="login").url, person.username, person.password,
                         stop_at=rp.redirect_uri, consent=None)
    again = answer(browser, page, rp.redirect_uri, method="recovery_code", code=codes[0])
    assert again.status_code == 400
    assert provider.core.factors.totp.recovery_codes_left(person.id) == 9


def test_enrolment_verification_and_failure_are_audited(provider: Provider, make_rp: RpFactory, person: Person,
                                                        browser: Browser) -> None:
    _at_level(provider, person, 3)
    enrol_totp(provider, browser, person, step_time())
    rp = make_rp(first_party=True)
    page = browser.login(rp.authorization(acr_values="loa/3", prompt="login").url, person.username, person.password,
                         stop_at=rp.redirect_uri, consent=None)
    answer(browser, page, rp.redirect_uri, method="otp", code="123456x")
    events.flush()
    with provider.core.engine.connect() as connection:
        rows = connection.execute(select(AuditEvent.event, AuditEvent.outcome, AuditEvent.details).where(
            AuditEvent.subject == person.id, AuditEvent.event.startswith("mfa."))).all()  # type: ignore[union-attr]
    assert ("mfa.enrolled", "success", {"method": "otp"}) in [tuple(r) for r in rows]
    assert ("mfa.failed", "failure", {"method": "otp"}) in [tuple(r) for r in rows]


def test_removing_totp_needs_the_second_factor_first(provider: Provider, person: Person, browser: Browser) -> None:
    now = step_time()
    secret, _codes = enrol_totp(provider, browser, person, now)
    page = browser.follow(browser.get(provider.url + "/account/security"), NOWHERE)
    assert "/mfa" in page.text  # the password session alone cannot change factors any more
    page = answer(browser, page, NOWHERE, method="otp", code=pyotp.TOTP(secret).at(now))
    assert "totp_remove" in page.text
    account_post(provider, browser, page, "totp_remove")
    assert not provider.core.factors.totp.enrolled(person.id)


def test_a_form_without_the_csrf_token_changes_nothing(provider: Provider, person: Person, browser: Browser) -> None:
    security_page(provider, browser, person)
    response = browser.http.post(provider.url + "/account/security", data={"action": "totp_begin"})
    assert response.status_code == 403
    assert provider.core.store.get(f"totp-enrol:{person.id}") is None


def test_guessing_codes_locks_the_second_factor_on_every_worker(provider: Provider, make_rp: RpFactory,
                                                               person: Person, browser: Browser,
                                                               another_worker: WorkerFactory) -> None:
    _at_level(provider, person, 3)
    now = step_time()
    secret, _codes = enrol_totp(provider, browser, person, now)
    other = another_worker()
    rp = make_rp(first_party=True)
    page = browser.login(rp.authorization(acr_values="loa/3", prompt="login").url, person.username, person.password,
                         stop_at=rp.redirect_uri, consent=None)
    limit = provider.core.settings.throttle_account_failures
    for guess in range(limit):
        page = answer(browser, page, rp.redirect_uri, method="otp", code=f"{guess:06d}")
    assert page.status_code == 429 and int(page.headers["retry-after"]) > 0
    right = answer(browser, page, rp.redirect_uri, at=other, method="otp", code=pyotp.TOTP(secret).at(now))
    assert right.status_code == 429  # locked on the other worker too, even for the right code
    assert provider.core.factors.totp.verify(person.id, pyotp.TOTP(secret).at(now))  # it was never checked, so never spent
