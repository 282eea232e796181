"""A job's read in parts (treadle/jobs/parts.py): the byte-range splitter,
and ingest, statistics and rejections merged from parts run in this
process against one read of the whole datasource. tests/test_dask_parts.py
runs the parts on a real cluster."""
from __future__ import annotations

import csv
import random

import numpy as np
import pytest

from learning_data import schema, write_dataset
from treadle.config import Settings
from treadle.data import locations
from treadle.data.ingest import ingest
from treadle.data.rearrangement import parse_rearrangement
from treadle.data.records import MAX_REJECTIONS
from treadle.data.schema import parse_schema
from treadle.jobs import datasource
from treadle.jobs.parts import align, merge_reads, plan_parts

# Fields the statistics estimate (docs/behaviour.md, "Datasource statistics"):
# compared within their stated error, not exactly.
APPROXIMATE = {"median", "quantiles", "histogram", "quantile_rank_error", "correlation_to_target",
               "binned_mutual_information"}


def _pieces(data: bytes, start: int, size: int):
    position = max(start - 1, 0)
    return [data[i:i + size] for i in range(position, len(data), size)]


def _ranges(data: bytes, part_bytes: int, piece: int):
    file = locations.DataFile("file:///x.csv", len(data))
    out = []
    for part in plan_parts([file], part_bytes):
        first, chunks = align(_pieces(data, part.start, piece), part.start, part.end)
        out.append((part, first, b"".join(chunks)))
    return out


@pytest.mark.parametrize("data", [
    b"a,b\n1,2\n3,4\n5,6\n",
    b"a,b\r\n1,2\r\n3,4\r\n\r\n55555,66666\r\n7,8",  # CRLF, a blank line, no line end at the end
    b"h\n" + b"".join(b"%d,%s\n" % (i, b"x" * (i % 37)) for i in range(300)),
    b"one line without an end",
    b"\n\n\n",
    b"",
])
def test_byte_ranges_hold_every_line_once_each_from_its_start(data):
    for part_bytes in (1, 2, 3, 5, 7, 16, 100, 10**6):
        for piece in (1, 3, 64):
            ranges = _ranges(data, part_bytes, piece)
            assert b"".join(chunk for _, _, chunk in ranges) == data
            for part, first, chunk in ranges:
                if chunk:
                    assert first == 0 or data[first - 1:first] == b"\n"  # a part begins at a line's start
                    assert part.start <= first < max(part.end, 1)  # the line begins in its range
                    assert data[first:first + len(chunk)] == chunk
                    assert chunk.endswith(b"\n") or first + len(chunk) == len(data)
            assert [p.header for p, _, _ in ranges] == [True] + [False] * (len(ranges) - 1)


def test_plan_cuts_files_by_size_and_counts_offsets_across_files():
    files = [locations.DataFile("s3://b/a", 250), locations.DataFile("s3://b/b", 0),
             locations.DataFile("s3://b/c", 100)]
    parts = plan_parts(files, 100)
    assert [(p.file_index, p.base, p.start, p.end, p.header) for p in parts] == [
        (0, 0, 0, 84, True), (0, 0, 84, 168, False), (0, 0, 168, 250, False),
        (1, 250, 0, 0, True), (2, 250, 0, 100, True)]
    assert [p.label for p in parts][-1] == "part 5 of 5"


class _InProcess:
    """Runs parts one after the other in this process, as DaskParts runs them on a cluster."""

    def map(self, ctx, function, tasks):
        for task in tasks:
            yield function(ctx.settings, task)


class _Entity:
    entity_id = "ds-parts"
    kind = None


class _Ctx:
    def __init__(self, folder, part_bytes: int):
        self.settings = Settings(data_dir=folder / "data", allowed_local_paths=[folder], part_bytes=part_bytes)
        self.parts = _InProcess()
        self.account = "111111111111"
        self.entity = _Entity()
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)

    def cancelled(self, now: bool = False) -> bool:
        return False


def _files(folder, count: int, rows: int, bad_every: int = 0) -> list[locations.DataFile]:
    paths = []
    for k in range(count):
        path = folder / f"part-{k}.csv"
        bad = tuple(range(bad_every, rows, bad_every)) if bad_every else ()
        write_dataset(path, rows, "BINARY", seed=30 + k, bad_lines=bad)
        paths.append(path)
    return locations.list_data_files((folder).as_uri(), [folder])


def _compare(parts_value, whole_value, path=""):
    if isinstance(whole_value, dict):
        assert set(parts_value) == set(whole_value), path
        for key in whole_value:
            if key not in APPROXIMATE:
                _compare(parts_value[key], whole_value[key], f"{path}.{key}")
    elif isinstance(whole_value, list):
        assert len(parts_value) == len(whole_value), path
        for i, (a, b) in enumerate(zip(parts_value, whole_value)):
            _compare(a, b, f"{path}[{i}]")
    elif isinstance(whole_value, float):
        assert parts_value == pytest.approx(whole_value, rel=1e-9, abs=1e-12), path
    else:
        assert parts_value == whole_value, path


def _column(files, name: str) -> np.ndarray:
    values = []
    for file in files:
        with open(file.uri.removeprefix("file://")) as handle:
            for row in csv.DictReader(handle):
                if row.get(name):
                    try:
                        values.append(float(row[name]))
                    except ValueError:
                        pass
    return np.sort(np.array(values))


def _ingest_both(tmp_path, files, split_text=None, part_bytes=20000):
    spec = parse_schema(schema("BINARY"))
    split = parse_rearrangement(split_text)
    total = sum(f.size for f in files)
    whole = ingest([locations.byte_source(f, [tmp_path]) for f in files], spec, split, total_size=total)
    ctx = _Ctx(tmp_path, part_bytes)
    parts = plan_parts(files, part_bytes)
    assert len(parts) > len(files)
    return whole, datasource._ingest_in_parts(ctx, parts, spec, split, True, total), ctx


@pytest.mark.parametrize("split_text", [
    None,
    '{"splitting": {"percentBegin": 30, "percentEnd": 80}}',
    '{"splitting": {"percentBegin": 0, "percentEnd": 70, "strategy": "random", "randomSeed": "s"}}',
    '{"splitting": {"percentBegin": 20, "percentEnd": 40, "complement": true}}',
])
def test_statistics_from_parts_equal_one_read(tmp_path, split_text):
    files = _files(tmp_path, 3, 1500, bad_every=97)
    whole, merged, ctx = _ingest_both(tmp_path, files, split_text)
    for name in ("records", "records_read", "selected", "rejected", "number_of_files", "rejections", "warnings"):
        assert getattr(merged, name) == getattr(whole, name), name
    assert whole.rejected > 10
    _compare(merged.statistics, whole.statistics)
    # The estimates hold their stated error: each quantile's rank is within
    # quantile_rank_error of its own.
    for attribute in merged.statistics["attributes"]:
        if attribute["type"] != "NUMERIC" or split_text:
            continue
        values = _column(files, attribute["name"])
        error = attribute["quantile_rank_error"]
        for q, value in attribute["quantiles"].items():
            rank = np.searchsorted(values, value, side="left") / len(values)
            high = np.searchsorted(values, value, side="right") / len(values)
            assert rank - error - 1e-9 <= float(q) <= high + error + 1e-9, (attribute["name"], q)
    assert any("part 2 of" in line and "ran on this process" in line for line in ctx.lines)


def test_rejection_limit_and_first_rejected_lines_stay_exact(tmp_path):
    path = tmp_path / "bad.csv"
    lines = ["id,x1,x2,colour,text,y"]
    rng = random.Random(5)
    for i in range(MAX_REJECTIONS + 2000):
        lines.append(f"r{i},1,2,red,good,1" if rng.random() < 0.1 else "broken,line")
    path.write_text("\n".join(lines) + "\n")
    files = locations.list_data_files(path.as_uri(), [tmp_path])
    spec = parse_schema(schema("BINARY"))
    with pytest.raises(Exception) as whole:
        ingest([locations.byte_source(f, [tmp_path]) for f in files], spec, total_size=files[0].size)
    with pytest.raises(Exception) as parted:
        datasource._ingest_in_parts(_Ctx(tmp_path, 20000), plan_parts(files, 20000), spec, parse_rearrangement(None),
                                    True, files[0].size)
    assert type(parted.value) is type(whole.value)
    assert parted.value.samples == whole.value.samples
    assert parted.value.message.split("First rejected records:")[1] == whole.value.message.split(
        "First rejected records:")[1]


def test_merge_numbers_rejections_from_the_file_start():
    from treadle.data.records import Rejection
    from treadle.jobs.parts import PartRead

    files = [locations.DataFile("s3://b/a", 300)]
    parts = plan_parts(files, 100)
    reads = [PartRead(i, "here", 0.0, 5, 5, 4, 1, [Rejection("a", 2, "bad")], 10, False, [], False)
             for i in range(3)]
    merged = merge_reads(parts, reads)
    assert [s.line for s in merged.samples] == [2, 12, 22]
    assert (merged.records_read, merged.accepted, merged.rejected) == (15, 12, 3)
