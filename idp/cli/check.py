"""`yihao check id-number|credit-code VALUE`: the validators' verdict for operators and scripts.

Exit 0 when valid, 1 when not. An ID number is printed masked, and without the facts that would
rebuild it next to the mask (birth date, full division code), unless ``--reveal`` asks for them:
output of scripts tends to end up in logs. Credit codes are public registrations: shown whole.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable

from realname import uscc
from realname.errors import ValidationError
from realname.idnumber import mask, parse_id_number

DOCUMENTS = {"resident": "居民身份证 / resident identity card",
             "hk_macao_taiwan_permit": "港澳台居民居住证 / Hong Kong, Macao and Taiwan residence permit",
             "foreign_permanent_resident": "外国人永久居留身份证 / foreigner permanent-residence ID"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("check", help="validate an ID number or a credit code")
    verbs = parser.add_subparsers(dest="check_verb", required=True)
    for verb, run, text in (("id-number", run_id_number, "a resident identity number (GB 11643)"),
                            ("credit-code", run_credit_code, "a unified social credit code (GB 32100)")):
        command = verbs.add_parser(verb, help=f"validate {text}")
        command.add_argument("value")
        command.add_argument("--json", action="store_true", help="print the verdict and the parsed facts as JSON")
        if verb == "id-number":
            command.add_argument("--reveal", action="store_true",
                                 help="also print the whole number, birth date and division code")
        command.set_defaults(run=run)


def run_id_number(args: argparse.Namespace) -> int:
    def facts(raw: str) -> dict[str, Any]:
        parsed = parse_id_number(raw)
        out = {"value": mask(parsed.value), "document_type": parsed.document_type, "sex": parsed.sex,
               "province": parsed.division_code[:2], "converted_from_15": parsed.converted_from_15}
        if args.reveal:
            out |= {"value": parsed.value, "birth_date": parsed.birth_date.isoformat(),
                    "division_code": parsed.division_code}
        return out | {"warnings": list(parsed.warnings)}

    return _report(args, facts, lambda f: DOCUMENTS[f["document_type"]])


def run_credit_code(args: argparse.Namespace) -> int:
    def facts(raw: str) -> dict[str, Any]:
        parsed = uscc.parse_credit_code(raw)
        return {"value": parsed.value, "authority": parsed.authority,
                "authority_name": uscc.AUTHORITIES.get(parsed.authority), "category": parsed.category,
                "category_name": uscc.CATEGORIES.get(parsed.category), "division_code": parsed.division_code,
                "organisation_code": parsed.organisation_code, "warnings": list(parsed.warnings)}

    return _report(args, facts, lambda f: f["category_name"] or f["category"])


def _report(args: argparse.Namespace, facts: Callable[[str], dict[str, Any]],
            title: Callable[[dict[str, Any]], str]) -> int:
    try:
        found = facts(args.value)
    except ValidationError as exc:
        reason = {"code": exc.code, "zh": exc.message_zh, "en": exc.message_en, "position": exc.position,
                  "expected": exc.expected}
        print(json.dumps({"valid": False, "reason": reason}, ensure_ascii=False) if args.json
              else f"invalid: {exc.message_zh} / {exc.message_en}")
        return 1
    if args.json:
        print(json.dumps({"valid": True, "reason": None, **found}, ensure_ascii=False))
    else:
        print(f"valid: {found['value']} ({title(found)})")
        for key, value in found.items():
            if key not in ("value", "warnings"):
                print(f"  {key}: {value}")
        for warning in found["warnings"]:
            print(f"  warning: {warning}")
    return 0
