"""Benchmark: Treadle's ingest with statistics against pandas read_csv + describe.

Usage:
    python bench/ingest.py --sizes 1,4          # 1 GB and 4 GB files (the issue's figures)
    python bench/ingest.py --quick              # one ~200 MB file, for development
    python bench/ingest.py --sizes 1 --repeat 2 # repeat each measurement, report the best run

The CSV files are generated once (deterministic seed) into --dir, default
/tmp/treadle-bench-ingest, and reused by later runs. Every measurement runs
in its own subprocess so that the peak resident memory reported is that
tool's alone. pandas holds the whole file in memory, so by default it is
measured only on files up to --pandas-max-gb (1 GB); larger sizes show
Treadle alone and the ratio uses the pandas figure from the largest file it
was run on.

Each line also gives MB per CPU-second (process time, all threads): on a
shared machine wall-clock throughput mostly measures the other load, while
CPU time shows what each tool costs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GB = 1 << 30
MB = 1 << 20

COLUMNS = [
    ("customer_id", "CATEGORICAL"),  # unique per record, like an ID
    ("age", "NUMERIC"),
    ("balance", "NUMERIC"),  # has missing and invalid cells
    ("score", "NUMERIC"),
    ("city", "CATEGORICAL"),
    ("job", "CATEGORICAL"),
    ("has_loan", "BINARY"),
    ("opted_in", "BINARY"),
    ("comment", "TEXT"),
    ("y", "BINARY"),
]
SCHEMA = {
    "version": "1.0", "dataFormat": "CSV", "dataFileContainsHeader": True, "targetAttributeName": "y",
    "attributes": [{"attributeName": n, "attributeType": t} for n, t in COLUMNS],
}
JOBS = ["admin", "technician", "services", "management", "retired", "blue-collar", "student",
        "entrepreneur", "self-employed", "housemaid", "unemployed", "unknown"]


def _block(rng: np.random.Generator, start: int, n: int, cities: np.ndarray, sentences: np.ndarray) -> bytes:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    y = rng.random(n) < 0.12
    age = rng.integers(18, 95, n)
    balance = np.round(rng.lognormal(7, 1.5, n) * np.where(rng.random(n) < 0.1, -1, 1), 2).astype(str)
    holes = rng.random(n)
    balance[holes < 0.03] = ""
    balance[(holes >= 0.03) & (holes < 0.035)] = "n/a"
    score = np.round(rng.normal(0.5 + 0.2 * y, 0.2, n), 5)
    city = cities[np.minimum(rng.zipf(1.3, n), len(cities)) - 1]
    job = np.array(JOBS)[rng.integers(0, len(JOBS), n)]
    loan = np.where(rng.random(n) < 0.3 + 0.3 * y, "yes", "no")
    opted = (rng.random(n) < 0.5).astype(np.int8).astype(str)
    comment = sentences[rng.integers(0, len(sentences), n)]
    ids = pc.binary_join_element_wise(
        "C", pa.array(np.arange(start, start + n)).cast(pa.string()), "")
    table = pa.table({
        "customer_id": ids, "age": age, "balance": balance, "score": score, "city": city, "job": job,
        "has_loan": loan, "opted_in": opted, "comment": comment, "y": y.astype(np.int8),
    })
    sink = pa.BufferOutputStream()
    # Quoted only where needed (here: nowhere), as pandas and most exporters write.
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=start == 0, quoting_style="none"))
    return sink.getvalue().to_pybytes()


def generate(path: str, size: int, seed: int = 20240601, rows: int | None = None) -> None:
    """Write a CSV of about `size` bytes, or of `rows` records (a multiple of
    200,000); the same seed and size give the same file."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocabulary = np.array(["".join(rng.choice(letters, k)) for k in rng.integers(2, 12, 20000)])
    # Zipf-like word use, as in real text; a pool of sentences keeps generation fast.
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    lengths = rng.integers(0, 30, 50000)
    words = iter(rng.choice(vocabulary, int(lengths.sum()), p=weights).tolist())
    ends = rng.choice(["", ".", "!"], len(lengths)).tolist()
    sentences = np.array([" ".join(next(words) for _ in range(k)) + (end if k else "")
                          for k, end in zip(lengths.tolist(), ends)])
    cities = np.array([f"city_{i:03d}" for i in range(300)])
    tmp = path + ".partial"
    written = start = 0
    with open(tmp, "wb") as out:
        while written < size and (rows is None or start < rows):
            data = _block(rng, start, 200_000, cities, sentences)
            out.write(data)
            written += len(data)
            start += 200_000
    os.replace(tmp, path)


# -- the measured tools, each run in a child process ---------------------------

def run_treadle(path: str) -> dict:
    sys.path.insert(0, ROOT)
    from treadle.data.ingest import ingest
    from treadle.data.records import file_source
    from treadle.data.schema import parse_schema

    schema = parse_schema(json.dumps(SCHEMA))
    began, cpu = time.perf_counter(), time.process_time()
    result = ingest([file_source(path)], schema, compute_statistics=True)
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    stats = result.statistics
    ids = next(a for a in stats["attributes"] if a["name"] == "customer_id")
    return {"seconds": elapsed, "cpu_seconds": cpu, "records": result.records, "rejected": result.rejected,
            "check": {"customer_id distinct (estimate)": ids["distinct"],
                      "target": stats["target"]["distribution"]}}


def run_pandas(path: str) -> dict:
    import pandas as pd

    began, cpu = time.perf_counter(), time.process_time()
    frame = pd.read_csv(path)
    description = frame.describe(include="all")
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"seconds": elapsed, "cpu_seconds": cpu, "records": len(frame),
            "check": {"customer_id distinct": int(description.loc["unique", "customer_id"])}}


def child(tool: str, path: str) -> None:
    import resource

    out = {"treadle": run_treadle, "pandas": run_pandas}[tool](path)
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps(out))


def measure(tool: str, path: str) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", tool, path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed on {path}:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["mb_s"] = os.path.getsize(path) / MB / out["seconds"]
    out["mb_cpu_s"] = os.path.getsize(path) / MB / out["cpu_seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4", help="file sizes in GB, comma separated (default 1,4)")
    parser.add_argument("--quick", action="store_true", help="one ~200 MB file instead of --sizes")
    parser.add_argument("--dir", default="/tmp/treadle-bench-ingest", help="where the CSV files are kept")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool and size; the best is reported")
    parser.add_argument("--pandas-max-gb", type=float, default=1.0,
                        help="measure pandas only on files up to this size (it loads the whole file)")
    parser.add_argument("--tools", default="treadle,pandas", help="which tools to run")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    sizes = [0.2] if args.quick else [float(s) for s in args.sizes.split(",")]
    tools = args.tools.split(",")
    os.makedirs(args.dir, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; best of {args.repeat} run(s) per measurement")
    rows = []
    pandas_ref = None
    for gb in sizes:
        path = os.path.join(args.dir, f"mixed_{gb:g}gb.csv")
        if not os.path.exists(path):
            print(f"generating {path} ...", flush=True)
            began = time.perf_counter()
            generate(path, int(gb * GB))
            print(f"  {os.path.getsize(path) / MB:,.0f} MB in {time.perf_counter() - began:.0f} s", flush=True)
        size_mb = os.path.getsize(path) / MB
        result = {}
        for tool in tools:
            if tool == "pandas" and gb > args.pandas_max_gb:
                continue
            runs = []
            for _ in range(args.repeat):
                runs.append(measure(tool, path))
                print(f"  {gb:g} GB {tool:8s} {runs[-1]['mb_s']:7.1f} MB/s  "
                      f"{runs[-1]['mb_cpu_s']:7.1f} MB per CPU-s  "
                      f"peak {runs[-1]['peak_rss'] / MB:7.0f} MB  {runs[-1]['check']}", flush=True)
            result[tool] = max(runs, key=lambda r: r["mb_s"])
        if "pandas" in result:
            pandas_ref = (gb, result["pandas"]["mb_s"])
        rows.append((gb, size_mb, result))

    print()
    print(f"{'file':>10} {'MB':>7} | {'treadle MB/s':>12} {'peak MB':>8} | {'pandas MB/s':>11} {'peak MB':>8} | ratio")
    for gb, size_mb, result in rows:
        t, p = result.get("treadle"), result.get("pandas")
        ratio = ""
        if t and p:
            ratio = f"{t['mb_s'] / p['mb_s']:.2f}x"
        elif t and pandas_ref:
            ratio = f"{t['mb_s'] / pandas_ref[1]:.2f}x vs pandas at {pandas_ref[0]:g} GB"
        cell = lambda r: (f"{r['mb_s']:12.1f} {r['peak_rss'] / MB:8.0f}" if r else f"{'-':>12} {'-':>8}")
        pcell = (f"{p['mb_s']:11.1f} {p['peak_rss'] / MB:8.0f}" if p else f"{'not run':>11} {'-':>8}")
        print(f"{gb:>7g} GB {size_mb:7.0f} | {cell(t)} | {pcell} | {ratio}")
    if any(gb > args.pandas_max_gb for gb in sizes) and "pandas" in tools:
        print(f"pandas is not run above {args.pandas_max_gb:g} GB: it holds the whole file in memory.")


if __name__ == "__main__":
    main()
