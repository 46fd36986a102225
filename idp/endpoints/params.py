"""Reading request parameters once, refusing what cannot be parsed with a clear OAuth error."""
from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_FIELDS = 200


class BadRequest(Exception):
    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description, self.status = description, status

    def response(self) -> JSONResponse:
        return oauth_error("invalid_request", self.description, self.status)


def oauth_error(error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def _decode(raw: bytes, where: str) -> list[tuple[str, str]]:
    if not raw:  # most machine requests have no query string
        return []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"the {where} is not valid UTF-8") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=False, strict_parsing=False, errors="strict",
                          max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise BadRequest(f"the {where} is not valid UTF-8 form encoding") from None
    except ValueError:  # parse_qsl's only other refusal: max_num_fields
        raise BadRequest(f"the {where} has more than {MAX_FIELDS} parameters") from None
    if any("\x00" in k or "\x00" in v for k, v in pairs):
        raise BadRequest(f"the {where} contains a NUL character")
    return pairs


def query_items(request: Request) -> list[tuple[str, str]]:
    return _decode(request.scope.get("query_string", b""), "query string")


async def form_items(request: Request) -> list[tuple[str, str]]:
    """The urlencoded body; any other content type is refused."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise BadRequest("the body must be application/x-www-form-urlencoded", 400)
    return _decode(await request.body(), "request body")
