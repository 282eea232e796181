
import numpy as np
import pytest

from treadle.data.rearrangement import Split
from treadle.data.records import (MAX_RECORD_BYTES, ByteSource, RecordReader, TooManyRejections, bytes_source,
                                  file_source)

from .conftest import make_schema

SCHEMA = make_schema([("a", "NUMERIC"), ("b", "CATEGORICAL"), ("c", "TEXT")])


def read(data, schema=SCHEMA, split=None, piece=7, chunk_bytes=64, **options):
    sources = data if isinstance(data, list) else [bytes_source("f.csv", data, piece=piece)]
    reader = RecordReader(sources, schema, split, chunk_bytes=chunk_bytes, **options)
    chunks = list(reader)
    rows = [row for c in chunks for row in zip(*(c.column(n).to_pylist() for n in schema.names))]
    lines = [int(x) for c in chunks for x in c.line_numbers]
    offsets = [int(x) for c in chunks for x in c.offsets]
    return reader, rows, lines, offsets


@pytest.mark.parametrize("piece, chunk_bytes", [(1, 16), (7, 64), (1 << 20, 1 << 22)])
def test_plain_file_any_piece_size(piece, chunk_bytes):
    data = b"1,x,hello world\n2,y,foo\n3,z,bar baz\n"
    reader, rows, lines, offsets = read(data, piece=piece, chunk_bytes=chunk_bytes)
    assert rows == [("1", "x", "hello world"), ("2", "y", "foo"), ("3", "z", "bar baz")]
    assert lines == [1, 2, 3]
    assert offsets == [0, 16, 24]
    assert reader.rejections.count == 0 and reader.bytes_read == len(data)


def test_crlf_blank_lines_and_missing_final_newline():
    data = b"1,x,t\r\n\r\n\n2,y,u\r\n3,z,v"
    reader, rows, lines, offsets = read(data)
    assert rows == [("1", "x", "t"), ("2", "y", "u"), ("3", "z", "v")]
    assert lines == [1, 4, 5]
    assert offsets == [0, 10, 17]
    assert reader.records_read == 3


def test_quoting_and_escaped_quotes():
    data = b'1,"a,b","say ""hi"""\n2,"",""\n'
    _, rows, _, _ = read(data)
    assert rows == [("1", "a,b", 'say "hi"'), ("2", "", "")]


@pytest.mark.parametrize("line, reason", [
    (b'4,"open,x', "not closed"),
    (b'4,ab"c,x', "double quote inside an unquoted value"),
    (b'4,"ab"c,x', "characters after a closing double quote"),
    (b"4,a\rb,x", "carriage return inside the record"),
    (b"4,x", "expected 3 fields, found 2"),
    (b"4,x,y,z", "expected 3 fields, found 4"),
    (b'4,"x,y",z,w', "expected 3 fields, found 4"),
])
def test_each_bad_line_is_rejected_alone(line, reason):
    data = b"1,a,t\n" + line + b"\n2,b,u\n"
    reader, rows, lines, _ = read(data)
    assert rows == [("1", "a", "t"), ("2", "b", "u")]
    assert lines == [1, 3]
    assert reader.rejections.count == 1
    sample = reader.rejections.samples[0]
    assert (sample.file, sample.line) == ("f.csv", 2)
    assert reason in sample.reason


def test_invalid_utf8_is_rejected_alone():
    data = b"1,a,t\n2,\xff\xfe,x\n3,c,v\n"
    reader, rows, _, _ = read(data, chunk_bytes=1 << 20)
    assert rows == [("1", "a", "t"), ("3", "c", "v")]
    assert reader.rejections.samples[0].line == 2
    assert "UTF-8" in reader.rejections.samples[0].reason


@pytest.mark.parametrize("chunk_bytes", [1 << 12, 1 << 22])
def test_record_over_100_kb_is_rejected(chunk_bytes):
    limit_line = b"1,x," + b"w" * (MAX_RECORD_BYTES - 4)  # exactly the limit
    long_line = b"2,x," + b"w" * (MAX_RECORD_BYTES - 3)
    data = limit_line + b"\r\n" + long_line + b"\n3,y,z\n" + long_line
    reader, rows, lines, offsets = read(data, piece=5000, chunk_bytes=chunk_bytes)
    assert [r[0] for r in rows] == ["1", "3"]
    assert lines == [1, 3]
    assert offsets[1] == len(limit_line) + 2 + len(long_line) + 1
    assert reader.rejections.count == 2
    assert [s.line for s in reader.rejections.samples] == [2, 4]
    assert all("longer than 100 KB" in s.reason for s in reader.rejections.samples)
    assert reader.bytes_read == len(data)


def test_header_skipped_per_file_and_mismatch_warned():
    schema = make_schema([("a", "NUMERIC"), ("b", "CATEGORICAL"), ("c", "TEXT")], dataFileContainsHeader=True)
    one = bytes_source("one.csv", b"\na,b,c\n1,x,t\n")
    two = bytes_source("two.csv", b"a,B,c\n2,y,u\n")
    reader, rows, lines, offsets = read([one, two], schema=schema)
    assert rows == [("1", "x", "t"), ("2", "y", "u")]
    assert lines == [3, 2]
    assert offsets == [7, 13 + 6]
    assert len(reader.warnings) == 1 and "two.csv" in reader.warnings[0] and "'B'" in reader.warnings[0]
    assert reader.files == 2 and reader.bytes_read == 13 + 12


def test_offsets_count_across_files():
    first = bytes_source("1.csv", b"1,a,x\n2,b,y\n")
    second = bytes_source("2.csv", b"3,c,z\n")
    _, _, lines, offsets = read([first, second])
    assert offsets == [0, 6, 12]
    assert lines == [1, 2, 1]


def test_sequential_split_selects_by_byte_position_before_checks():
    records = [b"%d,x,t" % i for i in range(10, 30)]  # 20 records of 6 bytes + newline
    records[3] = b"13,bad"  # outside the selection: not a rejection
    data = b"\n".join(records) + b"\n"
    assert len(data) == 20 * 7
    split = Split(50, 100)
    reader, rows, _, offsets = read(data, split=split)
    assert reader.rejections.count == 0
    assert all(o * 100 >= 50 * len(data) for o in offsets)
    assert [r[0] for r in rows] == [str(i) for i in range(20, 30)]
    _, rows_c, _, _ = read(data, split=Split(50, 100, complement=True))
    assert len(rows_c) == 9  # record 13 is selected now and rejected


def test_sequential_split_needs_sizes():
    source = ByteSource("x", iter([b"1,a,b\n"]), size=None)
    with pytest.raises(ValueError, match="total size"):
        RecordReader([source], SCHEMA, Split(0, 50))
    RecordReader([ByteSource("x", iter([b"1,a,b\n"]))], SCHEMA, Split(0, 50), total_size=6)


def test_random_split_disjoint_across_two_datasources():
    data = b"".join(b"%d,k%d,word\n" % (i, i % 7) for i in range(3000))
    train = read(data, split=Split(0, 70, False, "random", "seed"), chunk_bytes=4096)
    evaluation = read(data, split=Split(0, 70, True, "random", "seed"), chunk_bytes=4096)
    a = {r[0] for r in train[1]}
    b = {r[0] for r in evaluation[1]}
    assert not a & b and len(a | b) == 3000
    assert 1950 < len(a) < 2250
    again = read(data, split=Split(0, 70, False, "random", "seed"), chunk_bytes=1 << 20)
    assert {r[0] for r in again[1]} == a


def test_too_many_rejections():
    bad = b"only,two\n" * 10001
    with pytest.raises(TooManyRejections) as info:
        read(b"1,a,b\n" + bad, chunk_bytes=1 << 16)
    assert info.value.rejected == 10001
    assert "More than 10,000 records were rejected" in info.value.message
    assert "f.csv line 2: expected 3 fields, found 2" in info.value.message
    assert [s.line for s in info.value.samples] == list(range(2, 12))


def test_exactly_10000_rejections_is_still_fine():
    reader, rows, _, _ = read(b"1,a,b\n" + b"only,two\n" * 10000, chunk_bytes=1 << 16)
    assert reader.rejections.count == 10000 and len(rows) == 1
    assert len(reader.rejections.samples) == 10


def test_require_target_rejects_missing_and_invalid():
    schema = make_schema([("a", "NUMERIC"), ("y", "BINARY")], targetAttributeName="y")
    data = b"1,yes\n2,\n3,maybe\n4, F \n"
    reader, rows, lines, _ = read(data, schema=schema, require_target=True)
    assert rows == [("1", "yes"), ("4", " F ")]
    assert [s.reason for s in reader.rejections.samples] == ['target "y" is missing',
                                                             "target \"y\" has the invalid value 'maybe'"]
    reader, rows, _, _ = read(data, schema=schema)
    assert len(rows) == 4


def test_typed_columns():
    schema = make_schema([("n", "NUMERIC"), ("b", "BINARY"), ("t", "TEXT")])
    data = b"1.5,Yes,a b\n,n,  \n abc ,maybe,x\t y  z\n-2e3, FaLSe ,q\n1e999,1,w\n"
    reader = RecordReader([bytes_source("t.csv", data)], schema)
    (chunk,) = list(reader)
    n = chunk.typed("n")
    assert np.array_equal(n.values, [1.5, np.nan, np.nan, -2000, np.nan], equal_nan=True)
    assert n.missing.tolist() == [False, True, False, False, False]
    assert n.invalid.tolist() == [False, False, True, False, True]
    b = chunk.typed("b")
    assert np.array_equal(b.values, [1, 0, np.nan, 0, 1], equal_nan=True)
    assert b.invalid.tolist() == [False, False, True, False, False]
    assert chunk.tokens("t").to_pylist() == [["a", "b"], [], ["x", "y", "z"], ["q"], ["w"]]


def test_file_source(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"1,a,b\n2,c,d\n")
    reader, rows, _, _ = read([file_source(str(path))])
    assert len(rows) == 2 and reader.bytes_read == 12


def test_plain_blocks_match_arrow_parsing():
    # A quote anywhere in a block sends it through Arrow's reader; the same
    # records without it are cut by the compiled splitter.
    schema = make_schema([("n", "NUMERIC"), ("b", "BINARY"), ("t", "TEXT"), ("c", "CATEGORICAL")])
    lines = [b"1.5,yes,a b,x", b" 2 ,N,,y", b"abc,maybe,x\ty  z,", b"9007199254740993,1,w,z", b"7,0", b"3,1,q,r,s",
             b"1e999,true,\x1cctl,x"]
    plain = b"\n".join(lines) + b"\n"
    quoted = plain + b'"4",no,"u",v\n'
    a_reader, a_rows, a_lines, _ = read(plain, schema=schema, chunk_bytes=1 << 20)
    b_reader, b_rows, b_lines, _ = read(quoted, schema=schema, chunk_bytes=1 << 20)
    assert b_rows[:-1] == a_rows and b_lines[:-1] == a_lines
    assert [str(s) for s in a_reader.rejections.samples] == [str(s) for s in b_reader.rejections.samples]
    (a,), (b,) = list(RecordReader([bytes_source("f", plain)], schema)), list(RecordReader([bytes_source("f", quoted)], schema))
    assert a._table is None and b._table is not None
    for name in ("n", "b"):
        x, y = a.typed(name), b.typed(name)
        assert np.array_equal(x.values, y.values[:-1], equal_nan=True)
        assert (x.missing == y.missing[:-1]).all() and (x.invalid == y.invalid[:-1]).all()
    assert a.table.to_pylist() == b.table.slice(0, len(a)).to_pylist()
    assert a.take(np.array([True, False, True, False, True])).column("t").to_pylist() == ["a b", "x\ty  z", "\x1cctl"]


@pytest.mark.parametrize("body, plain", [
    (b"1,x,t\n2,y,u u\n", True),
    (b'1,x,t\n2,"y",u\n', False),  # a quoted record keeps the block on Arrow's path
])
def test_quoted_header_alone_keeps_the_block_plain(body, plain):
    schema = make_schema([("a", "NUMERIC"), ("b", "CATEGORICAL"), ("c", "TEXT")], dataFileContainsHeader=True)
    data = b'"a","b","c"\n' + body
    (chunk,) = list(RecordReader([bytes_source("f.csv", data)], schema))
    assert (chunk._table is None) == plain
    assert [tuple(r.values()) for r in chunk.table.to_pylist()] == [("1", "x", "t"), ("2", "y", body.split(b",")[-1].strip().decode())]
    assert list(chunk.line_numbers) == [2, 3]
    reader = RecordReader([bytes_source("f.csv", b'"a","x","c"\n' + body)], schema)
    list(reader)
    assert len(reader.warnings) == 1 and "'x'" in reader.warnings[0]
