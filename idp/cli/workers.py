"""Several worker processes on one port, each accepting on a listening socket of its own.

uvicorn's supervisor hands one socket to every worker, and the next connection goes to whichever
worker's event loop is idle; a worker whose thread pool is hashing a password has an idle loop.
Under a login load one worker took two connections for every one the other took, and the two
cores were not both used. With a SO_REUSEPORT socket per worker the kernel spreads new connections
evenly. The rest is uvicorn's supervisor: health checks, restarts, SIGHUP, graceful shutdown.
"""
from __future__ import annotations

import socket

from uvicorn import Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT: the kernel shares new connections among such sockets."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"cannot listen on {host}:{port}: {exc}") from None
    return sock


class Spread(Multiprocess):
    """Starts worker i on socket i. A worker started again (after a crash, or on SIGHUP) listens on
    every socket, as uvicorn's would: no socket is ever left without a worker to accept on it."""

    def init_processes(self) -> None:
        for sock in self.sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)


def run_spread(config: Config, host: str, port: int, workers: int) -> None:
    Spread(config, [reuse_port_socket(host, port) for _ in range(workers)]).run()
