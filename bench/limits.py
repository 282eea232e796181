"""Request limits under abuse: a 200 MB POST, and Predict latency while
1,000 idle and 50 slow-drip connections are held open.

    python bench/limits.py                       # ~2.5 minutes on 2 cores
    python bench/limits.py --rounds 5 --posts 50

One run:

1. starts `treadle serve` with its default limits and timeouts (through
   bench/predict.py's Bench: --workers is the CPU count, SigV4 on) and
   trains one BINARY model with a real-time endpoint;
2. sends --posts unsigned POSTs declaring a 200 MB body, one at a time.
   Each client sends the head, then keeps sending the body as fast as the
   connection takes it (as most clients do) until the answer's status line
   arrives; the time is from the head's last byte to that line. The
   resident memory of the server's HTTP processes (psutil) is sampled
   every 5 ms throughout, and compared with before and after;
3. measures Predict under a closed-loop load (bench/predict_load.py's
   generator: a pool of signed requests over --connections keep-alive
   connections, wrk when installed), alternately plain and while another
   process holds 1,000 idle connections (connected, never sending a byte)
   and 50 slow-drip ones (a byte of a request head every --drip seconds).
   That process opens them evenly over --spread seconds before the window,
   and a new one whenever the server closes one, as an attacker would, so
   the 1,050 stay open throughout; it reports how long the server kept
   them and what it answered.

It prints one line per measurement and a table with the targets: the
413 in under 50 ms, no growth of the server's memory (under 1 MiB), and
Predict p99 under 10 ms with the connections held (the median window;
the machine's other load moves single windows a lot, plain ones too).
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import select
import shutil
import socket
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from predict import Bench, add_load_options  # noqa: E402

POST_BYTES = 200 * 1000 * 1000
TARGET_POST_MS, TARGET_GROWTH_MIB, TARGET_P99_MS = 50.0, 1.0, 10.0
MIB = 1024 * 1024


# ------------------------------------------------------------ a big POST
def big_post(host: str, port: int, size: int, timeout: float) -> dict:
    """The head, then the body for as long as the server reads it, until
    the answer's status line; returns the time to it from the head."""
    head = (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-amz-json-1.1\r\n"
            f"X-Amz-Target: AmazonML_20141212.Predict\r\nContent-Length: {size}\r\n\r\n").encode()
    chunk = b" " * MIB
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head)
        started = time.perf_counter()
        sock.setblocking(False)
        sent, answer = 0, b""
        while b"\r\n" not in answer and time.perf_counter() - started < timeout:
            readable, writable, _ = select.select([sock], [sock] if sent < size else [], [], 1.0)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                try:
                    sent += sock.send(chunk[:size - sent])
                except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                    pass
        elapsed = time.perf_counter() - started
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none"
    return {"ms": elapsed * 1000, "status": status, "body_sent": sent}


class RssSampler(threading.Thread):
    """The summed resident memory of some processes, every 5 ms."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak = 0
        self.stopping = threading.Event()

    def rss(self) -> int:
        return sum(process.memory_info().rss for process in self.processes)

    def run(self) -> None:
        while not self.stopping.wait(0.005):
            self.peak = max(self.peak, self.rss())

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        return self.peak


def measure_posts(bench: Bench, args) -> dict:
    parts = urlsplit(bench.url)
    sampler = RssSampler(bench.treadle_http_pids())
    before = sampler.peak = sampler.rss()
    sampler.start()
    posts = []
    for _ in range(args.posts):
        posts.append(big_post(parts.hostname, parts.port, POST_BYTES, args.post_timeout))
        print(f"  200 MB POST: {posts[-1]['status']} after {posts[-1]['ms']:.2f} ms, "
              f"{posts[-1]['body_sent'] / MIB:.1f} MiB of the body sent by then", flush=True)
    time.sleep(1.0)  # the server's side of the last connection ends
    peak = sampler.stop()
    after = sampler.rss()
    times = sorted(p["ms"] for p in posts)
    return {"posts": posts, "statuses": Counter(p["status"] for p in posts), "p50_ms": statistics.median(times),
            "max_ms": times[-1], "before_mib": before / MIB, "peak_mib": peak / MIB, "after_mib": after / MIB}


# ------------------------------------------- connections held open
class _Held(asyncio.Protocol):
    def __init__(self, holder: "_Holder", kind: str):
        self.holder, self.kind = holder, kind
        self.transport = None
        self.opened = time.monotonic()
        self.answered = False
        self.dripped = 0  # bytes of the head sent

    def connection_made(self, transport):
        self.transport = transport
        self.holder.open[self.kind].add(self)

    def data_received(self, data):
        if not self.answered and data.startswith(b"HTTP/1.1 "):
            self.answered = True
            self.holder.answers[self.kind][data[9:12].decode()] += 1

    def connection_lost(self, exc):
        holder = self.holder
        holder.open[self.kind].discard(self)
        if not holder.stopping:
            holder.lifetimes[self.kind].append(time.monotonic() - self.opened)
            asyncio.get_running_loop().create_task(holder.connect(self.kind))


class _Holder:
    """Keeps `idle` never-speaking and `slow` slow-drip connections open,
    replacing each the server closes."""

    HEAD = b"POST / HTTP/1.1\r\nHost: treadle\r\nX-Filler: "

    def __init__(self, host, port, counts: dict[str, int], drip: float):
        self.host, self.port, self.counts, self.drip = host, port, counts, drip
        self.open = {kind: set() for kind in counts}
        self.lifetimes = {kind: [] for kind in counts}
        self.answers = {kind: Counter() for kind in counts}
        self.failures = 0
        self.stopping = False

    async def connect(self, kind: str) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            try:
                await loop.create_connection(lambda: _Held(self, kind), self.host, self.port)
                return
            except OSError:
                self.failures += 1
                await asyncio.sleep(0.1)

    async def connect_later(self, kind: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.connect(kind)

    async def run(self, ready, stop, spread: float) -> dict:
        # Opened evenly over `spread` seconds: the server's closes, and the
        # reopens that follow, come as steadily.
        total = sum(self.counts.values())
        delays = iter(spread * index / total for index in range(total))
        await asyncio.gather(*(self.connect_later(kind, next(delays))
                               for kind, count in self.counts.items() for _ in range(count)))
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(self.drip)
            for held in list(self.open.get("slow", ())):
                # An endless head: its request line and headers, then filler.
                at = held.dripped
                held.transport.write(self.HEAD[at:at + 1] if at < len(self.HEAD) else b"a")
                held.dripped += 1
        self.stopping = True
        held_open = {kind: len(conns) for kind, conns in self.open.items()}
        for conns in self.open.values():
            for held in list(conns):
                held.transport.close()
        return {"held_open": held_open, "failures": self.failures,
                "closed_by_server": {kind: len(times) for kind, times in self.lifetimes.items()},
                "lifetime_s": {kind: (statistics.median(times) if times else None)
                               for kind, times in self.lifetimes.items()},
                "answers": {kind: dict(answers) for kind, answers in self.answers.items()}}


def hold(host, port, counts, drip, spread, ready, stop, results) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    results.put(asyncio.run(_Holder(host, port, counts, drip).run(ready, stop, spread)))


def measure_predict(bench: Bench, args) -> tuple[list[dict], list[dict]]:
    """Predict windows alternately plain and with the connections held
    (the machine's other load then weighs on both alike)."""
    parts = urlsplit(bench.url)
    context = multiprocessing.get_context("spawn")
    plain, attacked = [], []
    for round_ in range(args.rounds):
        plain.append(bench.load(f"Predict, round {round_ + 1}", "treadle", "BINARY"))
        ready, stop, results = context.Event(), context.Event(), context.Queue()
        holder = context.Process(target=hold, daemon=True, args=(
            parts.hostname, parts.port, {"idle": args.idle, "slow": args.slow}, args.drip, args.spread,
            ready, stop, results))
        holder.start()
        if not ready.wait(args.spread + 120):
            raise RuntimeError("the connections could not all be opened")
        cpu = psutil.Process(holder.pid).cpu_times()
        result = bench.load(f"  + {args.idle} idle, {args.slow} slow", "treadle", "BINARY")
        holder_cpu = sum(psutil.Process(holder.pid).cpu_times()[:2]) - sum(cpu[:2])
        stop.set()
        result["held"] = held = results.get(timeout=60)
        holder.join(timeout=30)
        print(f"    held open at the end: {held['held_open']}; closed by the server (and reopened): "
              f"{held['closed_by_server']} after a median {held['lifetime_s']} s; answers {held['answers']}; "
              f"failed connects {held['failures']}; the holder's CPU {holder_cpu:.1f} s", flush=True)
        attacked.append(result)
    return plain, attacked


# ------------------------------------------------------------------ report
def report(posts: dict, plain: list[dict], held: list[dict]) -> None:
    def p99(results):
        return min(r["p99_ms"] for r in results), statistics.median(r["p99_ms"] for r in results)

    def rps(results):
        return statistics.median(r["rps"] for r in results)

    (plain_best, plain_median), (held_best, held_median) = p99(plain), p99(held)
    growth, peak_growth = posts["after_mib"] - posts["before_mib"], posts["peak_mib"] - posts["before_mib"]
    rows = [
        ("200 MB POST answered (max of runs)", f"{posts['max_ms']:.2f} ms (p50 {posts['p50_ms']:.2f})",
         f"< {TARGET_POST_MS:g} ms", posts["max_ms"] < TARGET_POST_MS and set(posts["statuses"]) == {"413"}),
        ("server RSS after - before", f"{growth:+.1f} MiB (peak {peak_growth:+.1f})",
         f"< {TARGET_GROWTH_MIB:g} MiB", max(growth, peak_growth) < TARGET_GROWTH_MIB),
        ("Predict p99, plain: median (best)", f"{plain_median:.2f} ms ({plain_best:.2f}) at {rps(plain):,.0f}/s",
         "", True),
        ("Predict p99, held: median (best)", f"{held_median:.2f} ms ({held_best:.2f}) at {rps(held):,.0f}/s",
         f"< {TARGET_P99_MS:g} ms", held_median < TARGET_P99_MS),
        ("  held / plain, medians", f"{held_median / plain_median:.2f}x p99, {rps(held) / rps(plain):.2f}x "
         "throughput", "", True),
    ]
    print()
    print(f"statuses of the 200 MB POSTs: {dict(posts['statuses'])}; server RSS before {posts['before_mib']:.1f} MiB, "
          f"peak {posts['peak_mib']:.1f} MiB, after {posts['after_mib']:.1f} MiB; {len(plain)} Predict windows each")
    for label, value, target, ok in rows:
        print(f"{label:<36} {value:<40} {target:<10} {'' if not target else 'ok' if ok else 'MISS'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20, help="200 MB POSTs sent, one after another")
    parser.add_argument("--post-timeout", type=float, default=120.0, help="seconds a POST may wait for its answer")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections held open")
    parser.add_argument("--slow", type=int, default=50, help="slow-drip connections held open")
    parser.add_argument("--drip", type=float, default=1.0, help="seconds between two bytes of a slow-drip head")
    parser.add_argument("--spread", type=float, default=10.0,
                        help="seconds over which the held connections are first opened (default: the "
                             "server's header timeout, so they are closed and reopened as steadily; 0: in a burst)")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of Predict windows, plain then held")
    add_load_options(parser)
    parser.add_argument("--dir", default=None, help="working directory (default: a new temp dir)")
    args = parser.parse_args(argv)
    # 1,050 held connections and the load's, in this process's children and the server's.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    bench = Bench(args)
    bench.engine = args.engine if args.engine != "auto" else ("wrk" if shutil.which("wrk") else "python")
    try:
        bench.start_treadle()
        bench.setup_models(kinds=("BINARY",), large=False)
        print(f"{args.posts} POSTs declaring {POST_BYTES / 1e6:g} MB, unsigned:", flush=True)
        posts = measure_posts(bench, args)
        print(f"Predict, engine {bench.engine}, {args.connections} connections, {args.duration:g} s windows:",
              flush=True)
        plain, attacked = measure_predict(bench, args)
        report(posts, plain, attacked)
    finally:
        bench.stop_all()
        if not args.dir:
            shutil.rmtree(bench.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
