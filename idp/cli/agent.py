"""`yihao agent`: the reference signing agent on loopback (a stand-in for a CA's USB-key agent)."""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

import uvicorn

from idp.agent import Agent, load_entry


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("agent", help="reference signing agent for certificate login (key files stand in for a USB key)")
    parser.add_argument("--identity", nargs=2, action="append", required=True, metavar=("KEY.pem", "CERTS.pem"),
                        help="a private key and its certificate, then any intermediates (repeatable)")
    parser.add_argument("--allow-origin", action="append", required=True, dest="origins",
                        help="origin of a Yihao login page allowed to use the agent (repeatable)")
    parser.add_argument("--port", type=int, default=18321, help="loopback port (default 18321, YIHAO_CERT_AGENT_URL's)")
    parser.add_argument("--pin-stdin", action="store_true", help="read the PIN from standard input (default 123456)")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started it ends (the demo's agent never outlives the demo)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    pin = sys.stdin.readline().rstrip("\n") if args.pin_stdin else "123456"
    try:
        entries = [load_entry(open(key, "rb").read(), open(certs, "rb").read()) for key, certs in args.identity]
    except (OSError, ValueError) as exc:
        print(f"yihao: {exc}", file=sys.stderr)
        return 1
    agent = Agent(entries, pin, tuple(o.rstrip("/") for o in args.origins))
    if args.exit_with_parent:
        _exit_with(os.getppid())
    print(f"signing agent on http://127.0.0.1:{args.port} with {len(entries)} certificate(s)", flush=True)
    uvicorn.run(agent.app(), host="127.0.0.1", port=args.port, log_level="warning")
    return 0


def _exit_with(parent: int) -> None:
    """A killed `yihao serve --demo` runs no clean-up: the agent notices its parent is gone (it is
    re-parented) and ends, so it never holds the agent port for the next demo."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
