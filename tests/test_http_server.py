"""One socket write per response (treadle.http_server), checked against a
recording transport and over a live connection."""
import socket

from treadle.http_server import _HeadHoldingTransport


class Recorder:
    def __init__(self):
        self.writes, self.closed, self.aborted = [], False, False

    def write(self, data):
        self.writes.append(bytes(data))

    def close(self):
        self.closed = True

    def abort(self):
        self.aborted = True

    def write_eof(self):
        self.writes.append(b"<eof>")

    def is_closing(self):
        return self.closed


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


def test_head_and_body_go_out_together():
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(HEAD)
    assert recorder.writes == []
    transport.write(b"{}")
    assert recorder.writes == [HEAD + b"{}"]
    transport.write(b"more")  # not a head: straight out
    assert recorder.writes[-1] == b"more"


def test_any_bytes_like_data():
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(memoryview(HEAD))
    transport.write(bytearray(b"{}"))
    assert recorder.writes == [HEAD + b"{}"]


def test_interim_response_is_not_held():
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_held_head_is_released_by_completion_close_and_eof():
    for finish in ("release", "close", "write_eof"):
        recorder = Recorder()
        transport = _HeadHoldingTransport(recorder)
        transport.write(HEAD)
        getattr(transport, finish)()
        assert recorder.writes[0] == HEAD
    recorder = Recorder()
    transport = _HeadHoldingTransport(recorder)
    transport.write(HEAD)
    transport.abort()
    assert recorder.writes == [] and recorder.aborted
    assert transport.is_closing() is False  # everything else is the transport's own


def _exchange(url: str, raw: bytes) -> bytes:
    host, port = url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_live_responses_whole(server):
    # GET, HEAD (no body write at all) and a refused POST, on one keep-alive
    # connection that the last request closes.
    raw = (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
           b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    answer = _exchange(server.url, raw)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.count(b'{"status":"ok"}') == 1  # HEAD has no body
    assert b"HTTP/1.1 403 Forbidden" in answer and answer.endswith(b"Request is missing Authentication Token\"}")
    # A malformed request gets a 400 (test_http_limits.py checks its body), then the connection closes.
    assert _exchange(server.url, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")


def test_live_head_response_is_not_kept_back(server):
    # Nothing follows a HEAD response's head on this connection: it must go
    # out when the response completes, not when the connection ends (uvicorn
    # closes an idle keep-alive connection after 5 s).
    host, port = server.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)  # times out (fails) if the head is held
    assert received.startswith(b"HTTP/1.1 200 OK")
