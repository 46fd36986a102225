"""The shape every real-name validation failure shares: a stable code and messages in both languages."""
from __future__ import annotations

from typing import Any


class ValidationError(ValueError):
    """A value failed validation; ``code`` is stable, ``position`` is 1-based when known.

    Messages never contain the whole number, so ``str(err)`` (the English message) is safe to show
    and to log.
    """

    def __init__(
        self,
        code: str,
        message_zh: str,
        message_en: str,
        *,
        expected: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.expected = expected
        self.position = position

    def __reduce__(self) -> tuple[object, ...]:
        kwargs = {"expected": self.expected, "position": self.position}
        return (_rebuild_error, (type(self), self.code, self.message_zh, self.message_en, kwargs))


def _rebuild_error(cls: type[ValidationError], code: str, zh: str, en: str, kwargs: dict[str, Any]) -> ValidationError:
    return cls(code, zh, en, **kwargs)
