"""`yihao ca add|list|remove`: the CAs whose certificates may log in, each with its profile."""
from __future__ import annotations

import argparse
import json
import sys

from idp import events
from idp.cli.common import open_core
from idp.pki.signatures import ALGORITHMS, key_algorithm
from idp.pki.truststore import REVOCATION, Anchor, CaProfile, TrustStoreError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ca", help="trusted certificate authorities (USB-key certificate login)")
    verbs = parser.add_subparsers(dest="ca_verb", required=True)
    add = verbs.add_parser("add", help="trust a root or intermediate CA certificate (PEM or DER)")
    add.add_argument("file", type=argparse.FileType("rb"), help="the CA certificate; - for stdin")
    add.add_argument("--name", required=True, help="a short name for people and audit records")
    add.add_argument("--algorithm", action="append", choices=ALGORITHMS, dest="algorithms",
                     help="key algorithms its certificates may use (repeatable; default all)")
    add.add_argument("--identity-field", action="append", default=[], dest="identity_fields", metavar="ext:OID|subject:OID",
                     help="where its certificates carry the credit code or ID number, in order "
                          "(repeatable; default every known field)")
    add.add_argument("--revocation", choices=REVOCATION, default="crl", help="crl (default; unknown status refuses) or none")
    add.add_argument("--crl-url", action="append", default=[], dest="crl_urls",
                     help="CRL URL used instead of the certificates' distribution points (repeatable)")
    add.add_argument("--crl-max-stale", type=int, default=0, metavar="SECONDS",
                     help="use a cached CRL this long past its nextUpdate when no fresh one can be fetched (default 0: fail closed)")
    add.add_argument("--level", type=int, default=4, help="identity level its certificates prove (default 4)")
    add.add_argument("--json", action="store_true")
    add.set_defaults(run=run_add)
    listing = verbs.add_parser("list", help="the trusted CAs and their profiles")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    remove = verbs.add_parser("remove", help="stop trusting a CA")
    remove.add_argument("name")
    remove.set_defaults(run=run_remove)


def describe(anchor: Anchor) -> dict[str, object]:
    certificate = anchor.certificate
    return {"name": anchor.name, "subject": anchor.subject, "fingerprint": anchor.fingerprint,
            "algorithm": key_algorithm(certificate), "not_after": certificate.not_valid_after_utc.isoformat(),
            "profile": anchor.profile.to_json()}


def run_add(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        with args.file:
            data = args.file.read()
        profile = CaProfile(algorithms=tuple(args.algorithms or ALGORITHMS), identity_fields=tuple(args.identity_fields),
                            revocation=args.revocation, crl_urls=tuple(args.crl_urls),
                            crl_max_stale=args.crl_max_stale, level=args.level)
        anchor = core.trust.add(args.name, data, profile)
        events.record(events.CA_ADDED, actor="cli", ca=anchor.name, fingerprint=anchor.fingerprint)
    except TrustStoreError as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    finally:
        core.close()
    out = describe(anchor)
    print(json.dumps(out, ensure_ascii=False) if args.json else f"trusted {anchor.name}: {anchor.subject} ({out['algorithm']})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        anchors = [describe(a) for a in core.trust.anchors()]
    finally:
        core.close()
    if args.json:
        print(json.dumps(anchors, ensure_ascii=False))
    for a in [] if args.json else anchors:
        print(f"{a['name']}\t{a['algorithm']}\t{a['subject']}\tuntil {a['not_after']}\t{json.dumps(a['profile'])}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    _settings, core = open_core()
    try:
        removed = core.trust.remove(args.name)
        if removed:
            events.record(events.CA_REMOVED, actor="cli", ca=args.name)
    finally:
        core.close()
    if not removed:
        print(f"yihao: no trusted CA named {args.name!r}", file=sys.stderr)
        return 1
    print(f"removed {args.name}")
    return 0
