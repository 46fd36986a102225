"""`yihao config`: check the configuration, or print its documentation table."""
from __future__ import annotations

import argparse

from idp.settings import load_settings, options_markdown


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="check configuration or print the settings table")
    parser.add_argument("--markdown", action="store_true", help="print the README's settings table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(options_markdown())
        return 0
    settings = load_settings()
    print(f"configuration is valid; issuer {settings.issuer}, {'embedded' if settings.embedded else 'production'} mode")
    return 0
