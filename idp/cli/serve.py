"""`yihao serve`: upgrade the embedded database, make keys, seed the demo, run the workers."""
from __future__ import annotations

import argparse
import os
import shutil

from idp.cli.common import open_core


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the identity provider")
    parser.add_argument("--demo", action="store_true", help="seed and serve the demo citizen and relying party")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    if args.demo:
        os.environ["YIHAO_DEMO"] = "true"  # the workers read the same environment
        os.environ.setdefault("YIHAO_REGISTRATION", "open")  # the demo lets any app register itself
    settings, core = open_core()
    try:
        core.keys.ensure()
        credentials = None
        if settings.demo:
            from idp.demo import seed_demo

            credentials = seed_demo(core)
    finally:
        core.close()
    if settings.workers > 1:
        metrics_dir = settings.var_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    province = None
    if settings.demo:
        from federation.demo import start_province

        try:
            province = start_province(settings)
        except Exception as exc:  # the city works without it: say why, and go on
            print(f"  (the demo province did not start: {type(exc).__name__}: {exc})", flush=True)
    host, port = settings.host_port
    print(f"Yihao OpenID Provider: {settings.issuer} (listening on {settings.bind}, "
          f"{'embedded' if settings.embedded else 'production'} mode, {settings.workers} worker(s))", flush=True)
    print(f"  discovery: {settings.issuer}/.well-known/openid-configuration", flush=True)
    print(f"  client registration: {settings.issuer}/register ({settings.registration})", flush=True)
    if credentials:
        print(f"  demo relying party: {settings.issuer}/demo", flush=True)
        print(f"  demo citizen: username {credentials.username}  password {credentials.password}"
              " (verified at L3: loa/3 asks for a second factor; agent of a demo enterprise)", flush=True)
        name, number = credentials.newcomer
        print(f"  sign up as a new citizen: name {name}  ID number {number} (synthetic, in the demo registry)",
              flush=True)
    if province:
        print(f"  demo province (upstream, button on the login page): {province.issuer}", flush=True)
        print(f"  province citizen (verified L2): username {province.username}  password {province.password}",
              flush=True)
    uvicorn.run("idp.asgi:app_from_env", factory=True, host=host, port=port, workers=settings.workers,
                log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=20,
                lifespan="on")
    return 0
