"""Default security headers on every HTTP response; a handler's own value wins."""

from __future__ import annotations


# form_post pages and check_session iframes set their own CSP/framing headers; those are kept.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
HSTS = "max-age=31536000; includeSubDomains"
