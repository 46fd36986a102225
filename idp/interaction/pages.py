"""Pages for people through one helper: both locales (zh-CN default, English), CSP nonce, no cache."""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from idp.crypto import random_token

LOCALES = ("zh-CN", "en")
_HERE = Path(__file__).resolve().parent.parent
_env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))
# A page answering a form's POST switches language on the GET page of the same step (by route name), so
# the switch never resubmits the form; a POST not named here (the federation link page, POST /authorize)
# has no such page, and offers no switch.
GET_PAGE = {
    "login": "/interaction/{uid}", "consent": "/interaction/{uid}", "enterprise_choice": "/interaction/{uid}",
    "second_factor": "/interaction/{uid}", "signup": "/interaction/{uid}/signup",
    "certificate_login": "/interaction/{uid}/certificate", "account_verify": "/account/verify",
    "account_security_change": "/account/security", "account_unlink": "/account/links", "device_enter": "/device",
    "end_session": "/logout", "logout_confirm": "/logout",
}


@lru_cache(maxsize=None)
def catalogue(locale: str) -> dict[str, str]:
    return json.loads((_HERE / "locales" / f"{locale}.json").read_text(encoding="utf-8"))


def translate(locale: str, key: str, **values: Any) -> str:
    text = catalogue(locale).get(key) or catalogue("en").get(key) or key
    return text.format(**values) if values else text


def duration(locale: str, seconds: int) -> str:
    """A wait a person can read: seconds up to two minutes, then whole minutes rounded up."""
    if seconds < 120:
        return translate(locale, "duration.seconds", n=seconds)
    return translate(locale, "duration.minutes", n=math.ceil(seconds / 60))


def accepted_languages(header: str) -> list[str]:
    """The language ranges of an Accept-Language header, most preferred first (RFC 9110 §12.5.4):
    by weight, in the header's order where weights tie; q=0 ("not acceptable") and bad weights are left out."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        if tag.strip() and 0 < weight <= 1:
            ranked.append((-weight, position, tag.strip()))
    return [tag for _weight, _position, tag in sorted(ranked)]


def negotiate(request: Request, default: str, ui_locales: str | None = None) -> str:
    """`lang` query parameter, then the client's ui_locales, then Accept-Language, then the default."""
    wanted = [request.query_params.get("lang", "")] + (ui_locales or "").split()
    wanted += accepted_languages(request.headers.get("accept-language", ""))
    for tag in wanted:
        lowered = tag.lower()
        if lowered.startswith("zh"):
            return "zh-CN"
        if lowered.startswith("en"):
            return "en"
    return default


def switch_url(request: Request, locale: str) -> str | None:
    """This page in `locale`: after a GET, a query-only reference (the same page, on this site whatever its
    path, even `//host`); after a POST, the GET page of the same step; None when there is none."""
    if request.method in ("GET", "HEAD"):
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
        return "?" + urlencode([*query, ("lang", locale)])
    page = GET_PAGE.get(getattr(request.scope.get("route"), "name", ""))
    if page is None:
        return None
    path = page.format(**{k: quote(str(v), safe="") for k, v in request.path_params.items()})
    return path + "?" + urlencode({"lang": locale})


def render(request: Request, template: str, context: dict[str, Any], *, locale: str, status: int = 200,
           form_action: str | None = None, frame_src: tuple[str, ...] = (),
           img_src: tuple[str, ...] = (), connect_src: tuple[str, ...] = ()) -> HTMLResponse:
    """The page in `locale`; `form_action`, `frame_src`, `img_src` and `connect_src` widen the CSP for
    this response only."""
    nonce = random_token(16)
    other = "en" if locale == "zh-CN" else "zh-CN"
    page = _env.get_template(template).render(
        **context, locale=locale, other_locale=other, csp_nonce=nonce,
        switch_url=switch_url(request, other),
        t=lambda key, **values: translate(locale, key, **values),
        has=lambda key: key in catalogue(locale),
    )
    csp = (f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:{''.join(' ' + src for src in img_src)}; "
           f"frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'"
           + (f" {form_action}" if form_action else "")
           + (f"; frame-src {' '.join(frame_src)}" if frame_src else "")
           + (f"; connect-src 'self' {' '.join(connect_src)}" if connect_src else ""))
    headers = {"Content-Security-Policy": csp, "Cache-Control": "no-store", "Content-Language": locale}
    return HTMLResponse(page, status_code=status, headers=headers)
