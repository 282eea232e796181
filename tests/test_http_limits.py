"""Robustness of the HTTP layer beneath the API (test_robustness.py covers
the JSON bodies above it): request heads that are missing, duplicated,
oversized or not ASCII, bodies around the size limit, and slow clients.

Every case drives a live server over raw sockets and must get a clean
answer (a 4xx with an AWS JSON error body, or a closed connection where
nothing was asked), never a 500, a hang or a dead server. Timeouts are
short here (the serve options below); the bounds checked are generous:
they tell "closed by its timeout" from "open for ever", not how punctual
the timer is. A new fix of this kind adds its case here.
"""
from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from dataclasses import dataclass

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support import Server, treadle
from treadle.config import MAX_REQUEST_BYTES
from treadle.http_limits import MAX_HEAD_BYTES

LIMIT = MAX_REQUEST_BYTES  # the server below keeps the default body limit
HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE_TIMEOUT = 1.0, 3.0, 1.0
SLACK = 10.0  # far more than a timer can be late, far less than for ever
CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET = "AmazonML_20141212.DescribeMLModels"


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    server = Server("", tmp_path_factory.mktemp("treadle-limits"), None)
    server.default_keys = server.create_keys("alice", "111111111111")
    server.start("--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
                 "--keep-alive-timeout", str(KEEP_ALIVE_TIMEOUT))
    yield server
    server.stop()


# ---------------------------------------------------------------------------
# A raw HTTP/1.1 client

@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> str:
        """The AWS error code, checking the envelope on the way."""
        assert self.headers.get("content-type") == CONTENT_TYPE, self
        payload = json.loads(self.body)
        code = payload["__type"].rsplit("#", 1)[-1]
        assert payload["message"].strip(), payload
        assert self.headers.get("x-amzn-errortype") == code, self
        for leak in ("Traceback", "site-packages", "/treadle/", "/tmp/"):
            assert leak not in payload["message"], payload
        return code


class Client:
    def __init__(self, server: Server, timeout: float = 30):
        host, port = server.url.rsplit("/", 1)[-1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed; received {self.buffer[:200]!r}")
        self.buffer += chunk

    def response(self) -> Response:
        """The next final response (interim 1xx ones are skipped)."""
        while True:
            while b"\r\n\r\n" not in self.buffer:
                self._fill()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue
            length = int(headers.get("content-length", 0))
            while len(self.buffer) < length:
                self._fill()
            body, self.buffer = self.buffer[:length], self.buffer[length:]
            return Response(status, headers, body)

    def closes_within(self, seconds: float) -> float:
        """Seconds until the server closed the connection (anything still
        arriving is dropped); fails if it is still open after `seconds`."""
        started = time.monotonic()
        self.sock.settimeout(seconds)
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail(f"the connection was still open after {seconds} s")
        return time.monotonic() - started


def post_head(length: int | None = 2, extra: bytes = b"") -> bytes:
    head = b"POST / HTTP/1.1\r\nHost: treadle\r\nContent-Type: " + CONTENT_TYPE.encode() + b"\r\n"
    head += b"X-Amz-Target: " + TARGET.encode() + b"\r\n"
    if length is not None:
        head += b"Content-Length: %d\r\n" % length
    return head + extra + b"\r\n"


def exchange(server: Server, raw: bytes) -> Response:
    with Client(server) as client:
        client.send(raw)
        return client.response()


# ---------------------------------------------------------------------------
# Body sizes around the limit

@pytest.mark.parametrize("length", [LIMIT + 1, 10**12])
def test_content_length_over_the_limit_is_refused_from_the_head_alone(limited, length):
    with Client(limited) as client:
        client.send(post_head(length))  # and not a byte of the body
        response = client.response()
        assert response.status == 413 and response.error() == "RequestEntityTooLargeException"
        assert str(LIMIT) in json.loads(response.body)["message"]
        assert response.headers["connection"] == "close"
        client.closes_within(SLACK)


@pytest.mark.parametrize("length", [LIMIT - 1, LIMIT])
def test_body_up_to_the_limit_reaches_the_api(limited, length):
    # Unsigned: the API reads the whole body, then asks for a signature.
    response = exchange(limited, post_head(length) + b" " * length)
    assert response.status == 403 and response.error() == "MissingAuthenticationTokenException"


def test_client_still_sending_a_refused_body_reads_the_answer(limited):
    # Like most clients, requests sends the body without waiting for an
    # answer; the refusal must not reach it as a reset connection.
    response = requests.post(limited.url + "/", data=b" " * (LIMIT + 1), timeout=30,
                             headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})
    assert response.status_code == 413
    assert response.headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"


def test_chunked_body_is_stopped_at_the_limit(limited):
    chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
    with Client(limited) as client:
        client.send(post_head(None, b"Transfer-Encoding: chunked\r\n"))
        client.sock.setblocking(False)
        sent, deadline = 0, time.monotonic() + 60
        # Send until the answer comes, without ever ending the body.
        while not client.buffer.endswith(b"}") and time.monotonic() < deadline:
            readable, writable, _ = select.select([client.sock], [client.sock] if sent < 4 * LIMIT else [], [], 1)
            if readable:
                data = client.sock.recv(65536)
                assert data, f"closed without an answer after {sent} bytes"
                client.buffer += data
            elif writable:
                try:
                    sent += client.sock.send(chunk)
                except BlockingIOError:
                    pass
        client.sock.setblocking(True)
        client.sock.settimeout(SLACK)
        response = client.response()
    assert response.status == 413 and response.error() == "RequestEntityTooLargeException"
    assert sent < 4 * LIMIT  # answered while the client was still sending


# ---------------------------------------------------------------------------
# Request heads: missing, duplicated, oversized, not ASCII

API = (403, "MissingAuthenticationTokenException")  # reached the API, which wants a signature
NOT_HTTP = (400, "SerializationException")
TOO_LARGE = (431, "RequestHeaderFieldsTooLargeException")

HEADS = {
    "missing Host": (b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", API),
    "missing X-Amz-Target": (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}", API),
    "missing Content-Length": (post_head(None), API),
    "HTTP/1.0, no headers": (b"POST / HTTP/1.0\r\n\r\n", API),
    "duplicated Content-Length, same value": (post_head(2, b"Content-Length: 2\r\n") + b"{}", NOT_HTTP),
    "duplicated Content-Length, different values": (post_head(2, b"Content-Length: 3\r\n") + b"{}", NOT_HTTP),
    "duplicated X-Amz-Target": (post_head(2, b"X-Amz-Target: AmazonML_20141212.DeleteMLModel\r\n") + b"{}", API),
    "duplicated Host": (post_head(2, b"Host: other\r\n") + b"{}", API),
    "Content-Length in exponent form": (post_head(None, b"Content-Length: 1e12\r\n"), NOT_HTTP),
    "negative Content-Length": (post_head(None, b"Content-Length: -1\r\n"), NOT_HTTP),
    "Content-Length past 64 bits": (post_head(None, b"Content-Length: 99999999999999999999999\r\n"), NOT_HTTP),
    "Content-Length with Transfer-Encoding": (post_head(2, b"Transfer-Encoding: chunked\r\n") + b"{}", NOT_HTTP),
    "unknown Transfer-Encoding": (post_head(None, b"Transfer-Encoding: gzip\r\n") + b"{}", NOT_HTTP),
    "bad chunk size": (post_head(None, b"Transfer-Encoding: chunked\r\n") + b"zz\r\n{}\r\n0\r\n\r\n", NOT_HTTP),
    "oversized header line": (post_head(2, b"X-Filler: " + b"a" * (MAX_HEAD_BYTES + 1) + b"\r\n") + b"{}",
                              TOO_LARGE),
    "oversized head of small lines": (post_head(2, b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 1000)
                                                           for i in range(MAX_HEAD_BYTES // 1000 + 1))) + b"{}",
                                      TOO_LARGE),
    "oversized URL": (b"POST /" + b"a" * (MAX_HEAD_BYTES + 1) + b" HTTP/1.1\r\nHost: t\r\n\r\n", TOO_LARGE),
    "megabytes of header line": (b"POST / HTTP/1.1\r\nX-Filler: " + b"a" * (8 << 20), TOO_LARGE),
    "non-ASCII header name": (post_head(2, "X-Émoji-☃: 1\r\n".encode()) + b"{}", NOT_HTTP),
    "Latin-1 header name": (post_head(2, b"X-\xe9: 1\r\n") + b"{}", NOT_HTTP),
    "non-ASCII header value": (post_head(2, "X-Note: ☃ déjà vu\r\n".encode()) + b"{}", API),
    "non-ASCII X-Amz-Target": (b"POST / HTTP/1.1\r\nHost: t\r\nX-Amz-Target: Amazon\xff\xfe.Predict\r\n"
                               b"Content-Length: 2\r\n\r\n{}", API),
    "non-ASCII path": ("POST /prédire HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}".encode(), NOT_HTTP),
    "NUL in a header value": (post_head(2, b"X-Note: a\x00b\r\n") + b"{}", NOT_HTTP),
    "header without a colon": (post_head(2, b"X-Note\r\n") + b"{}", NOT_HTTP),
    "space before the colon": (post_head(2, b"X-Note : 1\r\n") + b"{}", NOT_HTTP),
    "folded header line": (post_head(2, b"X-Note: a\r\n b\r\n") + b"{}", NOT_HTTP),
    "empty header name": (post_head(2, b": 1\r\n") + b"{}", NOT_HTTP),
    "not HTTP at all": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n", NOT_HTTP),
}


@pytest.mark.parametrize("name", list(HEADS))
def test_request_head(limited, name):
    raw, (status, code) = HEADS[name]
    response = exchange(limited, raw)
    assert (response.status, response.error()) == (status, code), response


def test_head_at_the_limit_is_read(limited):
    filler = MAX_HEAD_BYTES - len(post_head(2)) - 100
    response = exchange(limited, post_head(2, b"X-Filler: " + b"a" * filler + b"\r\n") + b"{}")
    assert response.status == 403 and response.error() == "MissingAuthenticationTokenException"


def test_duplicated_target_on_a_signed_request_does_only_what_was_signed(limited):
    keys = limited.default_keys
    request = AWSRequest(method="POST", url=limited.url + "/", data=b"{}",
                         headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})
    SigV4Auth(Credentials(keys.access_key_id, keys.secret_access_key), "machinelearning",
              "us-east-1").add_auth(request)
    signed = b"".join(f"{name}: {value}\r\n".encode() for name, value in request.headers.items())
    host = limited.url.split("//", 1)[1].encode()
    injected = b"X-Amz-Target: AmazonML_20141212.DeleteMLModel\r\n"
    for headers in (signed + injected, injected + signed):
        raw = b"POST / HTTP/1.1\r\nHost: " + host + b"\r\n" + headers + b"Content-Length: 2\r\n\r\n{}"
        response = exchange(limited, raw)
        if response.status == 200:
            assert "Results" in json.loads(response.body)  # DescribeMLModels's answer, not DeleteMLModel's
        else:
            assert response.status == 403 and response.error() == "InvalidSignatureException"


def test_pipelined_requests_are_not_counted_as_one_head(limited):
    request = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Filler: " + b"a" * 200 + b"\r\n\r\n"
    count = 4 * MAX_HEAD_BYTES // len(request)
    with Client(limited) as client:
        client.send(request * count)
        statuses = [client.response().status for _ in range(count)]
    assert statuses == [200] * count


_HEADER_NAMES = st.one_of(
    st.sampled_from([b"Host", b"X-Amz-Target", b"X-Amz-Date", b"Authorization", b"Content-Type", b"Expect",
                     b"Connection", b"Upgrade", b"User-Agent", b"Accept-Encoding"]),
    st.binary(max_size=40))
_HEADER_LINES = st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=300)), max_size=8).map(
    lambda pairs: [(n, v) for n, v in pairs
                   if n.strip().lower() not in (b"content-length", b"transfer-encoding")])


@settings(max_examples=60, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=_HEADER_LINES)
def test_fuzzed_headers_get_a_clean_answer(limited, lines):
    # Any bytes but line ends (the named cases above cover those): answered
    # 4xx with an AWS error, never 5xx, and never left without an answer.
    head = b"".join(name + b": " + value.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
                    for name, value in lines)
    response = exchange(limited, b"POST / HTTP/1.1\r\n" + head + b"Content-Length: 2\r\n\r\n{}")
    assert 400 <= response.status < 500, response
    response.error()


# ---------------------------------------------------------------------------
# Slow clients

def test_connection_that_never_speaks_is_closed(limited):
    with Client(limited) as client:
        client.closes_within(HEADER_TIMEOUT + SLACK)
        assert client.buffer == b""  # nothing was asked, nothing is answered


def test_half_sent_head_is_answered_408(limited):
    with Client(limited) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nX-Amz-")
        client.sock.settimeout(HEADER_TIMEOUT + SLACK)
        response = client.response()
        assert response.status == 408 and response.error() == "RequestTimeoutException"
        client.closes_within(SLACK)


def test_head_sent_a_byte_at_a_time_is_cut_at_the_header_timeout(limited):
    head = b"POST / HTTP/1.1\r\nHost: t\r\nX-Filler: " + b"a" * 1000  # outlasts the timeout at this pace
    with Client(limited) as client:
        client.sock.setblocking(False)
        started = time.monotonic()
        for byte in head:
            if select.select([client.sock], [], [], 0.05)[0] or time.monotonic() > started + HEADER_TIMEOUT + SLACK:
                break
            client.sock.send(bytes([byte]))
        client.sock.setblocking(True)
        client.sock.settimeout(SLACK)
        response = client.response()
    assert response.status == 408 and response.error() == "RequestTimeoutException"


def test_blank_lines_do_not_hold_a_connection(limited):
    with Client(limited) as client:
        started = time.monotonic()
        while time.monotonic() < started + HEADER_TIMEOUT + SLACK:
            try:
                client.send(b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([client.sock], [], [], 0.1)[0]:
                client.closes_within(SLACK)
                break
        else:
            pytest.fail("the connection was still open")


def test_stalled_body_is_answered_408(limited):
    with Client(limited) as client:
        client.send(post_head(100) + b'{"Limit":')
        client.sock.settimeout(BODY_TIMEOUT + SLACK)
        response = client.response()
        assert response.status == 408 and response.error() == "RequestTimeoutException"
        client.closes_within(SLACK)


def test_body_sent_a_byte_at_a_time_is_cut_at_the_body_timeout(limited):
    # Progress every 0.2 s does not extend the body's time (a total bound).
    length = int(BODY_TIMEOUT / 0.2) * 3
    with Client(limited) as client:
        client.send(post_head(length))
        for _ in range(length):
            if select.select([client.sock], [], [], 0.2)[0]:
                break
            client.send(b" ")
        client.sock.settimeout(SLACK)
        response = client.response()
    assert response.status == 408 and response.error() == "RequestTimeoutException"


def test_slow_but_timely_request_is_served(limited):
    raw = post_head(40) + b" " * 38 + b"{}"
    pieces = 8
    with Client(limited) as client:
        for start in range(0, len(raw), len(raw) // pieces + 1):
            client.send(raw[start:start + len(raw) // pieces + 1])
            time.sleep(HEADER_TIMEOUT / (2 * pieces))
        response = client.response()
    assert response.status == 403 and response.error() == "MissingAuthenticationTokenException"


def test_idle_kept_alive_connection_is_closed(limited):
    with Client(limited) as client:
        client.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.response().status == 200
        # uvicorn's own default would keep it 5 s.
        assert client.closes_within(KEEP_ALIVE_TIMEOUT + 2.5) >= KEEP_ALIVE_TIMEOUT / 2


def test_kept_alive_connection_gives_the_next_head_its_own_time(limited):
    with Client(limited) as client:
        client.send(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert client.response().status == 200
        time.sleep(KEEP_ALIVE_TIMEOUT / 2)
        client.send(b"GET /health HTTP/1.1\r\n")  # then nothing: the keep-alive wait is over
        client.sock.settimeout(HEADER_TIMEOUT + SLACK)
        response = client.response()
    assert response.status == 408 and response.error() == "RequestTimeoutException"


class _Transport:
    """Records what the protocol writes, and whether it closed."""

    def __init__(self):
        self.written, self.closed = b"", False

    def write(self, data):
        self.written += bytes(data)

    def write_eof(self):
        pass

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)


def test_timeout_never_cuts_an_answer_under_way():
    # A request answered slowly, then the start of a next head that stalls:
    # the head's timeout must not write a 408 into the first answer, nor
    # cut it; the connection closes once it is sent.
    from uvicorn.server import ServerState

    from treadle.http_limits import Limits
    from treadle.http_server import Config, OneWriteProtocol

    async def scenario():
        release = asyncio.Event()

        async def app(scope, receive, send):
            await receive()
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})

        config = Config(app, Limits(max_body=1000, header_timeout=0.1, body_timeout=0.1), log_config=None)
        protocol = OneWriteProtocol(config=config, server_state=ServerState(), app_state={},
                                    _loop=asyncio.get_running_loop())
        transport = _Transport()
        protocol.connection_made(transport)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HT")
        await asyncio.sleep(0.5)
        assert (transport.written, transport.closed) == (b"", False)
        release.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            if transport.closed:
                break
        return transport

    transport = asyncio.run(scenario())
    assert transport.written.startswith(b"HTTP/1.1 200 OK") and transport.written.endswith(b"\r\n\r\nok")
    assert transport.closed


def test_api_counts_the_body_itself(tmp_path):
    # Whatever protocol serves it, the API stops reading a body past the
    # limit and refuses it.
    from treadle.config import Settings
    from treadle.server import create_app

    app = create_app(Settings(data_dir=tmp_path, max_request_bytes=10))
    chunks = [{"type": "http.request", "body": b" " * 6, "more_body": True} for _ in range(5)]
    received, sent = [], []

    async def receive():
        received.append(chunks[len(received)])
        return received[-1]

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [(b"content-type", CONTENT_TYPE.encode())]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and len(received) == 2
    assert json.loads(sent[1]["body"])["__type"].rsplit("#", 1)[-1] == "RequestEntityTooLargeException"


def test_server_survived(limited):
    assert limited.process.poll() is None
    assert requests.get(limited.url + "/health", timeout=10).status_code == 200
    log = limited.log_text()
    assert '"level": "error"' not in log and "Traceback" not in log, log[-3000:]


# ---------------------------------------------------------------------------
# Options

def test_limits_apply_on_connections_handed_to_workers(tmp_path):
    server = Server("", tmp_path, None)
    server.start("--workers", "2", "--max-request-bytes", "1000", "--header-timeout", str(HEADER_TIMEOUT))
    try:
        for _ in range(4):  # the acceptor spreads connections over both workers
            response = exchange(server, post_head(1001))
            assert response.status == 413 and response.error() == "RequestEntityTooLargeException"
            response = exchange(server, post_head(1000) + b" " * 1000)
            assert response.status == 403 and response.error() == "MissingAuthenticationTokenException"
        idle = [Client(server) for _ in range(4)]
        for client in idle:
            client.closes_within(HEADER_TIMEOUT + SLACK)
            client.sock.close()
    finally:
        server.stop()


@pytest.mark.parametrize("option, value", [("--max-request-bytes", "0"), ("--header-timeout", "0"),
                                           ("--body-timeout", "-1"), ("--keep-alive-timeout", "nan")])
def test_bad_limit_options_are_refused(tmp_path, option, value):
    done = treadle("serve", "--data-dir", str(tmp_path), option, value)
    assert done.returncode == 2 and f"{option} must be" in done.stderr
