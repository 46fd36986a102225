"""What every verb shares: settings from the environment, and the core they describe."""
from __future__ import annotations

from idp.core import Core, build_core
from idp.settings import Settings, load_settings


def open_core(migrate: bool | None = None) -> tuple[Settings, Core]:
    """Settings and core; the embedded database is upgraded on first use, as `serve` does."""
    settings = load_settings()
    return settings, build_core(settings, migrate=settings.embedded if migrate is None else migrate)
