"""ASGI entry point for uvicorn workers: `uvicorn --factory idp.asgi:app_from_env`."""
from __future__ import annotations

from starlette.applications import Starlette

from idp.app import create_app
from idp.settings import load_settings


def app_from_env() -> Starlette:
    return create_app(load_settings())
