"""`yihao serve`: upgrade the embedded database, make keys, seed the demo, run the workers."""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from idp.cli.common import open_core
from idp.interaction.web import origin
from idp.settings import Settings, is_loopback_host

if TYPE_CHECKING:
    from idp.demo_pki import DemoEnterprise


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
        credentials = enterprise = None
        if settings.demo:
            from idp.demo import seed_demo
            from idp.demo_pki import seed_certificates

            credentials, enterprise = seed_demo(core), seed_certificates(core)
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
    agent = start_demo_agent(settings, enterprise) if enterprise else None
    try:
        from idp.cli.http import Protocol

        options = dict(factory=True, host=host, port=port, workers=settings.workers, log_config=None, http=Protocol,
                       access_log=False, server_header=False, timeout_graceful_shutdown=20, lifespan="on")
        if settings.workers > 1 and hasattr(socket, "SO_REUSEPORT"):
            from idp.cli.workers import run_spread

            run_spread(uvicorn.Config("idp.asgi:app_from_env", **options), host, port, settings.workers)
        else:
            uvicorn.run("idp.asgi:app_from_env", **options)
    finally:
        if agent is not None:
            agent.terminate()
    return 0


def start_demo_agent(settings: Settings, enterprise: DemoEnterprise) -> subprocess.Popen[bytes] | None:
    """The reference signing agent with the demo enterprise's two certificates (PIN 123456)."""
    agent = urlsplit(settings.cert_agent_url)
    if not is_loopback_host(agent.hostname) or agent.scheme != "http":
        return None
    command = [sys.executable, "-m", "idp", "agent", "--port", str(agent.port or 80),
               "--allow-origin", origin(settings.issuer), "--exit-with-parent"]
    for key, certificate in enterprise.identities:
        command += ["--identity", str(key), str(certificate)]
    print(f"  demo enterprise (credit code {enterprise.credit_code}): on the sign-in page choose the certificate "
          f"login; signing agent on {settings.cert_agent_url}, PIN 123456", flush=True)
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)
