"""The server's HTTP protocol (idp.cli.http): each response in one write, and HTTP otherwise unchanged."""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from idp.cli.http import Protocol
from tests.live import free_port, wait_until_up

TCP_INFO_DATA_SEGS_IN = 152  # struct tcp_info: u32 tcpi_data_segs_in (Linux 4.6+)
BIG = b"0123456789abcdef" * 65536  # 1 MiB: more than the socket takes in one send
second_chunk = threading.Event()


async def small(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"X-Extra": "1"})


async def empty(request: Request) -> Response:
    return Response(status_code=204)


async def big(request: Request) -> Response:
    return Response(BIG, media_type="application/octet-stream")


async def stream(request: Request) -> Response:
    async def chunks() -> object:
        yield b"first;"
        while not second_chunk.is_set():  # the client has read the first chunk before this one exists
            await asyncio.sleep(0.01)
        yield b"second"

    return StreamingResponse(chunks(), media_type="text/plain")


app = Starlette(routes=[Route("/small", small, methods=["GET", "HEAD"]), Route("/healthz", small), Route("/empty", empty),
                        Route("/big", big), Route("/stream", stream)])


def serve(protocol: type | str) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_config=None,
                                           access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until_up(f"http://127.0.0.1:{port}")
    yield port
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    yield from serve(Protocol)


@pytest.fixture(scope="module")
def stock_port() -> Iterator[int]:
    yield from serve("httptools")


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _read_response(sock: socket.socket, head_only: bool = False) -> tuple[bytes, dict[bytes, bytes], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the headers"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(b": ") for line in lines)}
    if head_only:
        return status, headers, b""
    if b"content-length" in headers:
        while len(body) < int(headers[b"content-length"]):
            chunk = sock.recv(1 << 20)
            assert chunk, "connection closed inside the body"
            body += chunk
    return status, headers, body


def _data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, TCP_INFO_DATA_SEGS_IN)[0]


def _segments_for_one_small_response(port: int) -> int:
    with _connect(port) as sock:
        sock.sendall(b"GET /small HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, body = _read_response(sock)
        assert (status, body, headers[b"x-extra"]) == (b"HTTP/1.1 200 OK", b"hello", b"1")
        return _data_segments_in(sock)


def test_a_small_response_arrives_in_one_segment(port: int, stock_port: int) -> None:
    assert _segments_for_one_small_response(port) == 1
    assert _segments_for_one_small_response(stock_port) == 2  # the headers, then the body


def test_keep_alive_head_and_no_content_answers_are_unchanged(port: int) -> None:
    with _connect(port) as sock:
        for _ in range(3):
            sock.sendall(b"GET /small HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _read_response(sock)[2] == b"hello"
        sock.sendall(b"HEAD /small HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers, _ = _read_response(sock, head_only=True)
        assert status == b"HTTP/1.1 200 OK" and headers[b"content-length"] == b"5"
        sock.sendall(b"GET /empty HTTP/1.1\r\nHost: t\r\n\r\n")
        assert _read_response(sock, head_only=True)[0] == b"HTTP/1.1 204 No Content"
        sock.sendall(b"GET /small HTTP/1.1\r\nHost: t\r\n\r\n")  # still usable after the body-less ones
        assert _read_response(sock)[2] == b"hello"


def test_a_response_before_connection_close_is_sent_whole(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        _status, headers, body = _read_response(sock)
        assert body == BIG and headers[b"connection"] == b"close"
        assert sock.recv(1) == b""  # then closed


def test_a_streamed_chunk_leaves_without_waiting_for_the_next(port: int) -> None:
    second_chunk.clear()
    with _connect(port) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while b"first;" not in data:
            chunk = sock.recv(65536)
            assert chunk
            data += chunk
        assert b"second" not in data
        second_chunk.set()
        while not data.endswith(b"0\r\n\r\n"):
            data += sock.recv(65536)
        assert b"second" in data
