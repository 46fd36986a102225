"""The `yihao` command: one module per verb, each adding its own sub-parser."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from idp.settings import ConfigError

VERBS = ("serve", "db", "accounts", "clients", "keys", "config", "check", "registry", "audit", "enterprises",
         "upstreams", "partners", "ca", "agent")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="yihao", description="Yihao unified identity provider")
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb in VERBS:
        module = __import__(f"idp.cli.{verb}", fromlist=["register"])
        module.register(sub)
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"yihao: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
