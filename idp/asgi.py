"""ASGI entry point for uvicorn workers: `uvicorn --factory idp.asgi:app_from_env`."""
from __future__ import annotations

import gc

from starlette.applications import Starlette

from idp.app import create_app
from idp.settings import load_settings


def app_from_env() -> Starlette:
    """The worker's app. What start-up made (modules, the ORM's metadata, templates, the core) lives as
    long as the worker, so it is frozen out of the cyclic collector's scans: otherwise each full
    collection walks it all again, and under load, with requests held in flight across their Redis
    round trips, promotions trigger full collections often enough to cost a fifth of a worker."""
    app = create_app(load_settings())
    gc.collect()
    gc.freeze()
    return app
