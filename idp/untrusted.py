"""Reading what another party sent: JSON that may be hostile."""
from __future__ import annotations

import json
from typing import Any


def parse_json(raw: str | bytes) -> Any:
    """`json.loads`, with every way a hostile document can fail it reported as ValueError.

    The standard parser raises RecursionError, not ValueError, for arrays or objects nested a few
    thousand deep: a caller that catches ValueError alone would answer such a document with a 500."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("the JSON document is nested too deeply") from None
