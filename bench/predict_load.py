"""The Predict load generator of `bench/predict.py`, run as its own process.

It signs a pool of distinct Predict requests with botocore's SigV4Auth (as
a boto3 client would: same target, content type and signed headers), then
replays them over a fixed number of keep-alive HTTP/1.1 connections, each
sending its next request as soon as the previous answer is in (a closed
loop), and prints one JSON line: throughput, latency percentiles, status
counts and the CPU time the generator itself used.

Two engines: `python` (asyncio protocols on uvloop, no HTTP library in the
way) and `wrk` (Debian's wrk with a Lua script replaying the same bytes),
which leaves more of the 2 cores to the server under test.

    python bench/predict_load.py --spec spec.json    # see bench/predict.py

Signatures stay valid for 15 minutes, so the pool is signed right before
each measurement; the server under test verifies every request.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

TARGET = "AmazonML_20141212.Predict"
CONTENT_TYPE = "application/x-amz-json-1.1"
WORDS = ["good", "bad", "great", "awful", "ok", "meh", "fine", "poor"]


def records(count: int, seed: int) -> list[dict]:
    """Distinct records shaped like tests/learning_data.py's rows."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        out.append({"x1": f"{rng.gauss(0, 1):.5f}", "x2": f"{rng.gauss(0, 1):.5f}",
                    "colour": rng.choice(["red", "green", "blue"]),
                    "text": " ".join(rng.choice(WORDS) for _ in range(4))})
    return out


def signed_pool(url: str, model_id: str, count: int, keys: dict | None, seed: int) -> list[bytes]:
    """Raw HTTP/1.1 requests, each signed by botocore's SigV4Auth over the
    headers botocore's JSON protocol sends (keys=None: unsigned)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(url)
    host = parts.netloc
    path = parts.path or "/"
    signer = None
    if keys:
        signer = SigV4Auth(Credentials(keys["access_key_id"], keys["secret_access_key"]),
                           "machinelearning", keys.get("region", "us-east-1"))
    pool = []
    for record in records(count, seed):
        body = json.dumps({"MLModelId": model_id, "Record": record, "PredictEndpoint": url}).encode()
        request = AWSRequest(method="POST", url=url, data=body,
                             headers={"X-Amz-Target": TARGET, "Content-Type": CONTENT_TYPE,
                                      "User-Agent": "treadle-bench/1.0 botocore"})
        if signer is not None:
            signer.add_auth(request)
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in request.headers.items()
                  if name.lower() not in ("host", "content-length")]
        pool.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return pool


# ------------------------------------------------------------------ python
class _Connection(asyncio.Protocol):
    """One keep-alive connection in a closed loop: a request, its whole
    answer, the next request."""

    def __init__(self, run: "_Run"):
        self.run = run
        self.buffer = bytearray()
        self.sent = 0.0
        self.transport = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.send()

    def send(self):
        run = self.run
        if run.stopping:
            self.transport.close()
            return
        run.next = (run.next + 1) % len(run.pool)
        self.sent = time.perf_counter()
        self.transport.write(run.pool[run.next])

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            length = 0
            at = head.find(b"content-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15: stop if stop > 0 else len(head)])
            if len(buffer) < end + 4 + length:
                return
            status = head[9:12]
            del buffer[:end + 4 + length]
            self.run.done(self.sent, status)
            self.send()

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)


class _Run:
    def __init__(self, pool, window_start, window_end):
        self.pool = pool
        self.next = 0
        self.window_start, self.window_end = window_start, window_end
        self.latencies: list[float] = []
        self.statuses: dict[bytes, int] = {}
        self.stopping = False

    def done(self, sent: float, status: bytes) -> None:
        now = time.perf_counter()
        if self.window_start <= sent and now <= self.window_end:
            self.latencies.append(now - sent)
            self.statuses[status] = self.statuses.get(status, 0) + 1
        if now > self.window_end:
            self.stopping = True


async def _drive(host, port, pool, connections, warmup, duration):
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + warmup
    run = _Run(pool, start, start + duration)
    conns = []
    for _ in range(connections):
        _, protocol = await loop.create_connection(lambda: _Connection(run), host, port)
        conns.append(protocol)
    for protocol in conns:
        await protocol.closed
    return run


def python_engine(url, pool, connections, warmup, duration) -> dict:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    parts = urlsplit(url)
    before = resource.getrusage(resource.RUSAGE_SELF)
    run = asyncio.run(_drive(parts.hostname, parts.port, pool, connections, warmup, duration))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lat = sorted(run.latencies)

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
    ok = run.statuses.get(b"200", 0)
    return {"engine": "python", "requests": len(lat), "ok": ok, "rps": len(lat) / duration,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": lat[-1] * 1000 if lat else None,
            "statuses": {k.decode(): v for k, v in run.statuses.items()},
            "client_cpu": cpu / (warmup + duration)}


# --------------------------------------------------------------------- wrk
_LUA_DONE = r"""
done = function(summary, latency, requests)
  io.write(string.format('{"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"non2xx":%d,"errors":%d}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def _lua_string(raw: bytes) -> str:
    return '"' + "".join(f"\\{b:03d}" if (b < 32 or b > 126 or b in (34, 92)) else chr(b) for b in raw) + '"'


def wrk_engine(url, pool, connections, warmup, duration) -> dict:
    wrk = shutil.which("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("local pool = {\n" + ",\n".join(_lua_string(raw) for raw in pool) + "\n}\n")
        script.write("local i = math.random(#pool)\n"
                     "request = function()\n  i = i % #pool + 1\n  return pool[i]\nend\n")
        script.write(_LUA_DONE)
    try:
        common = [wrk, "-t1", f"-c{connections}", "-s", script.name, "--timeout", "5s", url]
        if warmup > 0:
            subprocess.run(common[:1] + [f"-d{max(1, round(warmup))}s"] + common[1:], capture_output=True, check=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(common[:1] + [f"-d{max(1, round(duration))}s"] + common[1:],
                              capture_output=True, text=True, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        os.unlink(script.name)
    lines = [x for x in done.stdout.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"wrk printed no figures: {done.stdout} {done.stderr}")
    line = lines[-1]
    figures = json.loads(line)
    seconds = figures["duration_us"] / 1e6
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"engine": "wrk", "requests": figures["requests"], "ok": figures["requests"] - figures["non2xx"],
            "rps": figures["requests"] / seconds, "p50_ms": figures["p50_us"] / 1000,
            "p90_ms": figures["p90_us"] / 1000, "p99_ms": figures["p99_us"] / 1000,
            "max_ms": figures["max_us"] / 1000, "statuses": {"non-2xx": figures["non2xx"],
                                                            "socket errors": figures["errors"]},
            "client_cpu": cpu / seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, help="JSON: url, model_id, keys (or null), pool, seed, "
                                                      "connections, warmup, duration, engine")
    args = parser.parse_args(argv)
    with open(args.spec) as handle:
        spec = json.load(handle)
    pool = signed_pool(spec["url"], spec["model_id"], spec["pool"], spec.get("keys"), spec.get("seed", 1))
    engine = spec.get("engine", "python")
    if engine == "wrk" and shutil.which("wrk") is None:
        print("predict_load: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    run = wrk_engine if engine == "wrk" else python_engine
    result = run(spec["url"], pool, spec["connections"], spec["warmup"], spec["duration"])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
