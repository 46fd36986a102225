"""Path validation, signatures and identity extraction for RSA, ECDSA and SM2 hierarchies."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from idp.pki import identity, path, signatures
from idp.pki.errors import Refused
from idp.pki.truststore import Anchor, CaProfile, TrustStoreError, fingerprint
from tests.pki import ID_OID, USCC_OID, Ca, root

USCC = "91350100M000100Y43"
ID_NUMBER = "11010519491231002X"
def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)  # openssl starts validity at this second


def anchor(ca: Ca, **profile: object) -> Anchor:
    return Anchor("id-" + ca.certificate.subject.rfc4514_string(), "ca", ca.certificate, fingerprint(ca.certificate),
                  CaProfile(**profile))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pki")


@pytest.fixture(scope="module", params=["rsa", "ecdsa", "sm2"])
def chain(request: pytest.FixtureRequest, work: Path) -> tuple[Ca, Ca]:
    top = root(f"Root {request.param}", request.param, work)
    return top, top.issue(f"Sub {request.param}", ca=True, path_length=0)


def test_a_leaf_under_an_intermediate_validates_to_the_trusted_root(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    leaf = sub.issue("某某科技有限公司", strings={USCC_OID: USCC})
    validated = path.validate(leaf.certificate, [sub.certificate], (anchor(top),), now())
    assert validated.certificates == (leaf.certificate, sub.certificate, top.certificate)
    assert signatures.verify(leaf.certificate, b"yihao-login|n|o|1", leaf.sign(b"yihao-login|n|o|1"))
    assert not signatures.verify(leaf.certificate, b"yihao-login|other|o|1", leaf.sign(b"yihao-login|n|o|1"))


def test_without_the_intermediate_the_issuer_is_untrusted(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    leaf = sub.issue("x", strings={USCC_OID: USCC})
    with pytest.raises(Refused) as refused:
        path.validate(leaf.certificate, [], (anchor(top),), now())
    assert refused.value.code == "untrusted_ca"


def test_a_ca_with_the_same_name_but_another_key_is_not_the_issuer(chain: tuple[Ca, Ca], work: Path) -> None:
    top, _ = chain
    impostor = root(top.certificate.subject.get_attributes_for_oid(
        top.certificate.subject.rdns[0]._attributes[0].oid)[0].value, top.algorithm, work)  # type: ignore[attr-defined]
    leaf = impostor.issue("x")
    with pytest.raises(Refused) as refused:
        path.validate(leaf.certificate, [], (anchor(top),), now())
    assert refused.value.code == "untrusted_ca"


@pytest.mark.parametrize("when, code", [(dt.timedelta(days=400), "expired"), (dt.timedelta(days=-1), "not_yet_valid")])
def test_validity_is_checked(chain: tuple[Ca, Ca], when: dt.timedelta, code: str) -> None:
    top, sub = chain
    leaf = sub.issue("x")
    with pytest.raises(Refused) as refused:
        path.validate(leaf.certificate, [sub.certificate], (anchor(top),), now() + when)
    assert refused.value.code == code


def test_an_encryption_certificate_cannot_log_in(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    leaf = sub.issue("x", usage=("keyEncipherment", "dataEncipherment"))
    with pytest.raises(Refused) as refused:
        path.validate(leaf.certificate, [sub.certificate], (anchor(top),), now())
    assert refused.value.code == "key_usage"


def test_path_length_and_ca_flag_are_enforced(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    deeper = sub.issue("Sub-sub", ca=True)  # sub has pathlen 0: it may not issue a CA
    leaf = deeper.issue("x")
    with pytest.raises(Refused) as refused:
        path.validate(leaf.certificate, [sub.certificate, deeper.certificate], (anchor(top),), now())
    assert (refused.value.code, refused.value.detail) == ("chain_invalid", "path length constraint exceeded")
    not_a_ca = sub.issue("End entity")
    forged = Ca(not_a_ca.certificate, not_a_ca.key, not_a_ca.algorithm, not_a_ca.workdir).issue("y")
    with pytest.raises(Refused) as refused:
        path.validate(forged.certificate, [sub.certificate, not_a_ca.certificate], (anchor(top),), now())
    assert (refused.value.code, refused.value.detail) == ("chain_invalid", "issuer is not a CA")


def test_the_profile_limits_the_algorithms(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    others = tuple(a for a in signatures.ALGORITHMS if a != top.algorithm)
    with pytest.raises(Refused) as refused:
        path.validate(sub.issue("x").certificate, [sub.certificate], (anchor(top, algorithms=others),), now())
    assert refused.value.code == "algorithm_not_allowed"


def test_raw_r_s_signatures_verify_for_ec_keys(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    leaf = sub.issue("x")
    if leaf.algorithm == "rsa":
        assert signatures.verify(leaf.certificate, b"challenge", leaf.sign(b"challenge", pss=True))
    else:
        raw = leaf.sign(b"challenge", raw=True)
        assert len(raw) == 64 and signatures.verify(leaf.certificate, b"challenge", raw)
        assert not signatures.verify(leaf.certificate, b"challenge", b"\x00" * 64)
    assert not signatures.verify(leaf.certificate, b"challenge", b"not a signature")


def test_sm2_certificates_are_recognised_and_ecdsa_ones_are_not(chain: tuple[Ca, Ca]) -> None:
    top, sub = chain
    assert signatures.key_algorithm(sub.issue("x").certificate) == top.algorithm


@pytest.mark.parametrize("where", ["ext2023", "serialNumber", "organizationIdentifier", "cn"])
def test_the_credit_code_is_found_wherever_the_ca_put_it(chain: tuple[Ca, Ca], where: str) -> None:
    _, sub = chain
    kwargs: dict[str, dict[str, str]] = {
        "ext2023": {"strings": {USCC_OID: USCC}},
        "serialNumber": {"subject": {"serialNumber": USCC}},
        "organizationIdentifier": {"subject": {"organizationIdentifier": "NTRCN-" + USCC}},
        "cn": {},
    }[where]
    leaf = sub.issue("某某科技有限公司@N" + USCC if where == "cn" else "某某科技有限公司", **kwargs)  # type: ignore[arg-type]
    found = identity.extract(leaf.certificate, CaProfile().fields)
    assert found.credit_code is not None and found.credit_code.reveal() == USCC and found.id_number is None


def test_an_id_number_maps_to_a_person_and_a_bad_value_is_invalid(chain: tuple[Ca, Ca]) -> None:
    _, sub = chain
    person = identity.extract(sub.issue("张三", strings={ID_OID: ID_NUMBER}).certificate, CaProfile().fields)
    assert person.id_number is not None and person.id_number.reveal() == ID_NUMBER and person.credit_code is None
    bad = identity.extract(sub.issue("x", strings={USCC_OID: USCC[:-1] + "0"}).certificate, CaProfile().fields)
    assert (bad.credit_code, bad.id_number, bad.invalid) == (None, None, True)
    nothing = identity.extract(sub.issue("Plain name").certificate, CaProfile().fields)
    assert (nothing.credit_code, nothing.invalid) == (None, False)


def test_a_profile_reads_only_the_fields_it_names(chain: tuple[Ca, Ca]) -> None:
    _, sub = chain
    leaf = sub.issue("x", subject={"serialNumber": USCC})
    assert identity.extract(leaf.certificate, (f"ext:{USCC_OID}",)).credit_code is None


def test_profiles_refuse_what_they_cannot_honour() -> None:
    with pytest.raises(TrustStoreError):
        CaProfile(algorithms=("dsa",))
    with pytest.raises(TrustStoreError):
        CaProfile(crl_urls=("ldap://x",))
    assert CaProfile.from_json(CaProfile(crl_max_stale=60).to_json()) == CaProfile(crl_max_stale=60)
