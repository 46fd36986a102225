"""What the flow hands its HTTP handlers: outcomes, the authorize input, and errors for the client."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class Outcome:
    """What the handler sends: a redirect, an auto-submitting form, or a page for a person."""

    redirect: str | None = None
    form_post: tuple[str, list[tuple[str, str]]] | None = None
    page: str | None = None  # template name
    status: int = 200
    context: dict[str, Any] = field(default_factory=dict)
    set_session: str | None = None  # a new session handle for the cookie
    clear_session: bool = False


@dataclass(frozen=True)
class AuthorizeInput:
    method: str
    url: str
    headers: Mapping[str, str]
    items: list[tuple[str, str]]
    session_handle: str | None
    browser_id: str


class AuthorizationError(Exception):
    """An error for the client (sent to its redirect URI) or, before the redirect URI is trusted, a page."""

    def __init__(self, error: str, description: str, redirect_uri: str | None = None) -> None:
        super().__init__(description)
        self.error, self.description, self.redirect_uri = error, description, redirect_uri


def error_page(error: str, description: str, status: int = 400) -> Outcome:
    return Outcome(page="error.html", status=status, context={"error": error, "error_description": description})
