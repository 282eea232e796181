"""Streaming CSV records reader (docs/behaviour.md, "CSV records" and "Data rearrangement").

Rules, in the order they are applied to each file:

* Lines end at ``\\n`` or ``\\r\\n``; a value never contains an end of line,
  even when quoted. A carriage return anywhere else makes the line malformed.
  Line numbers are 1-based physical lines of their file.
* Empty lines (nothing, or only a ``\\r``) are skipped and are not records.
* With ``dataFileContainsHeader`` the first non-empty line of *each* file is
  its header; it is not a record. Names that differ from the schema's are
  reported in `RecordReader.warnings`, not as an error.
* The split is applied to records by the byte offset of their first byte,
  counted across files in order; only selected records are checked further,
  so bad lines outside the selected range never count as rejections.
* A selected record is rejected when it is longer than 102,400 bytes (without
  its line end), is malformed CSV (RFC 4180 quoting: a quote may only open a
  field, a closing quote must be followed by a comma or the line end, inner
  quotes are doubled, every quoted field is closed), is not valid UTF-8, has
  a field count different from the schema's, or -- only when the reader is
  asked to `require_target` -- has a missing or invalid target value.
* More than `max_rejections` (10,000) rejections raise `TooManyRejections`.

Lines, and in plain blocks fields, are found by compiled scans of the raw
bytes (`scan`); blocks with quotes, carriage returns or non-ASCII bytes are
checked with numpy and parsed into string columns by pyarrow.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from treadle.data import cells, kernels, scan
from treadle.data.rearrangement import Split
from treadle.data.schema import DataSchema

MAX_RECORD_BYTES = 102400
MAX_REJECTIONS = 10000
SAMPLE_REJECTIONS = 10
DEFAULT_CHUNK_BYTES = 4 << 20

_NL, _CR, _QUOTE, _COMMA = 10, 13, 34, 44


@dataclass
class ByteSource:
    """One data file: its name (for messages), its bytes in pieces, its size if known."""

    name: str
    chunks: Iterable[bytes]
    size: int | None = None
    # A byte range of a file read on its own (treadle/jobs/parts.py): where
    # its first byte lies among the datasource's bytes, which the split
    # selects by, and whether a header may begin it (only a file's first range).
    offset: int | None = None
    header: bool = True


def file_source(path: str, block_size: int = 1 << 20) -> ByteSource:
    import os

    def read() -> Iterator[bytes]:
        with open(path, "rb") as handle:
            while block := handle.read(block_size):
                yield block

    return ByteSource(name=os.path.basename(path) or path, chunks=read(), size=os.path.getsize(path))


def bytes_source(name: str, data: bytes, piece: int = 1 << 20) -> ByteSource:
    return ByteSource(name, (data[i:i + piece] for i in range(0, len(data), piece)), len(data))


@dataclass(frozen=True)
class Rejection:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


class TooManyRejections(Exception):
    def __init__(self, message: str, rejected: int, samples: list[Rejection]):
        super().__init__(message)
        self.message = message
        self.rejected = rejected
        self.samples = samples


@dataclass
class RejectionLog:
    limit: int = MAX_REJECTIONS
    count: int = 0
    samples: list[Rejection] = field(default_factory=list)
    records_seen: int = 0

    def add(self, file: str, lines: Iterable[int], reasons: Iterable[str]) -> None:
        for line, reason in zip(lines, reasons):
            self.count += 1
            if len(self.samples) < SAMPLE_REJECTIONS:
                self.samples.append(Rejection(file, int(line), reason))
        if self.count > self.limit:
            raise TooManyRejections(self.message(), self.count, list(self.samples))

    def message(self) -> str:
        first = "; ".join(str(s) for s in self.samples)
        return (
            f"More than {self.limit:,} records were rejected ({self.count:,} of the "
            f"{self.records_seen:,} records read so far), so the data was rejected. "
            f"First rejected records: {first}"
        )


class RecordChunk:
    """Accepted records from one file: raw string columns plus where each came from.

    A chunk cut from plain lines (`_Fields`) keeps the field positions in
    the block it came from and builds Arrow columns only when asked: the
    statistics read the fields where they are (`spans`), which spares a copy
    of every byte.
    """

    def __init__(self, schema: DataSchema, table: pa.Table | None, offsets: np.ndarray,
                 line_numbers: np.ndarray, file_name: str, file_index: int, fields: _Fields | None = None):
        self.schema = schema
        self._table = table
        self._fields = fields
        self._columns: dict[str, pa.Array] = {}
        self.offsets = offsets
        self.line_numbers = line_numbers
        self.file_name = file_name
        self.file_index = file_index
        self._typed: dict[str, cells.TypedColumn] = {}

    @property
    def table(self) -> pa.Table:
        if self._table is None:
            self._table = self._fields.table(self.schema.names)
        return self._table

    def __len__(self) -> int:
        return self._fields.rows if self._table is None else self._table.num_rows

    def column(self, name: str) -> pa.Array:
        if self._table is None:
            found = self._columns.get(name)
            if found is None:
                found = self._columns[name] = self._fields.column(self.schema.names.index(name))
            return found
        return self._table.column(name).combine_chunks()

    def spans(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """(starts, ends, data, plain): value i is data[starts[i]:ends[i]]; `plain` when every
        byte is printable ASCII, a space or a tab (`kernels.plain_ascii`)."""
        if self._table is None:
            starts, ends = self._fields.spans(self.schema.names.index(name))
            return starts, ends, self._fields.arr, self._fields.plain
        offsets, data = kernels.buffers(self.column(name))
        return offsets[:-1], offsets[1:], data, kernels.plain_ascii(offsets, data)

    def value_spans(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, data) of each value without the whitespace around it
        (docs/behaviour.md, "Cells"): a CATEGORICAL value as it is counted."""
        starts, ends, data, plain = self.spans(name)
        return cells.value_spans(starts, ends, data, plain, None if plain else self.column(name))

    def typed(self, name: str) -> cells.TypedColumn:
        """NUMERIC and BINARY attributes as float64 with missing/invalid masks."""
        if name not in self._typed:
            kind = self.schema.type_of(name)
            if kind not in ("NUMERIC", "BINARY"):
                raise TypeError(f'attribute "{name}" is {kind}, not NUMERIC or BINARY')
            if self._table is None and self._fields.plain:
                starts, ends, data, _ = self.spans(name)
                found = (cells.numeric_spans(starts, ends, data) if kind == "NUMERIC"
                         else cells.binary_spans(starts, ends, data))
            else:
                found = (cells.numeric if kind == "NUMERIC" else cells.binary)(self.column(name))
            self._typed[name] = found
        return self._typed[name]

    def tokens(self, name: str) -> pa.ListArray:
        return cells.tokens(self.column(name))

    def take(self, keep: np.ndarray) -> RecordChunk:
        if self._table is None:
            chunk = RecordChunk(self.schema, None, self.offsets[keep], self.line_numbers[keep],
                                self.file_name, self.file_index, self._fields.take(keep))
        else:
            chunk = RecordChunk(self.schema, self._table.filter(pa.array(keep)), self.offsets[keep],
                                self.line_numbers[keep], self.file_name, self.file_index)
        chunk._typed = {k: v.take(keep) for k, v in self._typed.items()}
        return chunk


@dataclass
class _Fields:
    """Records of a block of plain lines, as field positions in the block's bytes."""

    arr: np.ndarray
    starts: np.ndarray  # each record's first byte
    ends: np.ndarray  # each record's end, line end excluded
    cuts: np.ndarray  # each record's comma positions, one column per comma
    plain: bool

    @property
    def rows(self) -> int:
        return len(self.starts)

    def spans(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        width = self.cuts.shape[1] + 1
        starts = self.starts if c == 0 else self.cuts[:, c - 1] + 1
        ends = self.ends if c == width - 1 else self.cuts[:, c]
        return starts, ends

    def column(self, c: int) -> pa.Array:
        starts, ends = self.spans(c)
        offsets, data = kernels.gather(starts, ends, self.arr)
        return pa.StringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))

    def table(self, names: list[str]) -> pa.Table:
        rows = np.arange(self.rows)
        data, offsets, bounds = kernels.gather_fields(self.arr, self.starts, self.ends, self.cuts, rows, len(names))
        return pa.Table.from_arrays(
            [pa.StringArray.from_buffers(self.rows, pa.py_buffer(offsets[c]), pa.py_buffer(data[bounds[c]:bounds[c + 1]]))
             for c in range(len(names))], names=names)

    def take(self, keep: np.ndarray) -> _Fields:
        return _Fields(self.arr, self.starts[keep], self.ends[keep], self.cuts[keep], self.plain)


@dataclass
class _Lines:
    """Line layout of one block of complete lines."""

    arr: np.ndarray
    starts: np.ndarray  # first byte of each line
    ends: np.ndarray  # end of content, line end excluded
    spans: np.ndarray  # bytes each line occupies including its line end
    has_quote: bool
    has_cr: bool
    ascii: bool  # every byte below 0x80
    plain: bool  # every byte but line feeds as `kernels.plain_ascii` wants
    # Per line, for blocks without quotes, carriage returns or non-ASCII
    # bytes (`scan.split_lines`): field count and comma positions.
    fields: np.ndarray | None = None
    cuts: np.ndarray | None = None


def _layout(buf, width: int, header_first: bool = False) -> _Lines:
    """`header_first`: the block's first line, if not empty, is a header, not a record."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    words = scan.words_of(arr)
    count, has_quote, has_cr, ascii, plain = scan.block_flags(arr, words)
    if header_first and has_quote and not has_cr and ascii:
        # pandas and Arrow quote every name of a header and nothing else, so
        # the records after it can still be split as plain lines.
        first = bytes(buf[:MAX_RECORD_BYTES + 2]).find(b"\n")
        if first > 0:
            rest = arr[first + 1:]
            has_quote = scan.block_flags(rest, scan.words_of(rest))[1]
    fields = cuts = None
    if not has_quote and not has_cr and ascii:
        # Lines and fields in the same look at the bytes.
        line_ends, cuts, fields = scan.split_lines(arr, words, count, width)
    else:
        line_ends = scan.line_feeds(arr, words, count)
        if len(arr) and arr[-1] != _NL:
            line_ends = np.append(line_ends, len(arr))
    starts = np.empty(len(line_ends), dtype=np.int64)
    if len(starts):
        starts[0] = 0
        starts[1:] = line_ends[:-1] + 1
    ends = line_ends
    if has_cr and len(ends):
        has_cr_end = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == _CR)
        ends = ends - has_cr_end
    spans = np.minimum(line_ends + 1, len(arr)) - starts
    return _Lines(arr, starts, ends, spans, has_quote, has_cr, ascii, plain, fields, cuts)


def _malformed(buf: bytes, lines: _Lines) -> np.ndarray | None:
    """Per line: 0 if fine, else a code into _MALFORMED_REASONS. None when nothing is wrong."""
    if not lines.has_quote and not lines.has_cr:
        return None
    codes = np.empty(len(lines.starts), dtype=np.int8)
    found = scan.malformed_lines(lines.arr, lines.starts, lines.ends, codes)
    return codes if found else None


_MALFORMED_REASONS = {
    1: "malformed CSV: carriage return inside the record",
    2: "malformed CSV: a double quote inside an unquoted value",
    3: "malformed CSV: characters after a closing double quote",
    4: "malformed CSV: a quoted value is not closed before the end of the line",
}


def _blocks(chunks: Iterable[bytes], block_size: int) -> Iterator[tuple[str, object, int]]:
    """Regroup a file's pieces into ("lines", bytes, start) blocks of whole lines.

    A line that is already over the size limit before its end was seen is
    not buffered: it comes out as ("long", length, start) once it ends, so
    memory stays near `block_size` whatever the input looks like.
    """
    pieces: list[bytes] = []
    size = 0
    start = 0
    skipping = -1  # bytes of the overlong line seen so far, or -1
    for data in chunks:
        if not data:
            continue
        if skipping >= 0:
            newline = data.find(b"\n")
            if newline < 0:
                skipping += len(data)
                continue
            yield "long", skipping + newline, start
            start += skipping + newline + 1
            skipping = -1
            data = data[newline + 1:]
            if not data:
                continue
        pieces.append(data)
        size += len(data)
        if size < block_size:
            continue
        buf = b"".join(pieces)
        last = buf.rfind(b"\n")
        if last >= 0:
            # A view, not a copy of the block.
            yield "lines", memoryview(buf)[:last + 1], start
            start += last + 1
            rest = buf[last + 1:]
        else:
            rest = buf
        if len(rest) > MAX_RECORD_BYTES + 1:
            skipping = len(rest)
            pieces, size = [], 0
        else:
            pieces, size = ([rest] if rest else []), len(rest)
    if skipping >= 0:
        yield "long", skipping, start
    elif pieces:
        yield "lines", b"".join(pieces), start


def _header_names(line: bytes) -> list[str] | None:
    try:
        return next(csv.reader([line.decode("utf-8-sig")], strict=True))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return None


def _slow_parse(lines: list[bytes], width: int) -> tuple[list[list[str] | None], list[str | None]]:
    """Careful per-line parse for chunks pyarrow refused; returns rows or reasons."""
    rows: list[list[str] | None] = []
    reasons: list[str | None] = []
    for raw in lines:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rows.append(None)
            reasons.append("not valid UTF-8")
            continue
        try:
            row = next(csv.reader([text], strict=True))
        except (csv.Error, StopIteration) as exc:
            rows.append(None)
            reasons.append(f"malformed CSV: {exc}")
            continue
        if len(row) != width:
            rows.append(None)
            reasons.append(f"expected {width} fields, found {len(row)}")
            continue
        rows.append(row)
        reasons.append(None)
    return rows, reasons


class RecordReader:
    """Iterate over `RecordChunk`s of accepted, selected records from `sources`.

    Counters (`records_read`, `selected`, `accepted`, `rejections`,
    `bytes_read`, `files`) and `warnings` are up to date after each chunk.
    """

    def __init__(self, sources: Iterable[ByteSource], schema: DataSchema, split: Split | None = None,
                 *, total_size: int | None = None, require_target: bool = False,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, max_rejections: int = MAX_REJECTIONS):
        self.sources = list(sources)
        self.schema = schema
        self.split = split or Split()
        if total_size is None and not self.split.selects_everything and self.split.strategy == "sequential":
            sizes = [s.size for s in self.sources]
            if any(size is None for size in sizes):
                raise ValueError("a sequential split needs the total size: give total_size or every source's size")
            total_size = sum(sizes)
        self.total_size = total_size or 0
        self.require_target = require_target and schema.target is not None
        self.chunk_bytes = chunk_bytes
        self.rejections = RejectionLog(limit=max_rejections)
        self.warnings: list[str] = []
        self.records_read = 0
        self.selected = 0
        self.accepted = 0
        self.bytes_read = 0
        self.files = 0
        # Per source: its physical lines, and whether its header was still
        # awaited at its end (a range of blank lines only). A file read in
        # ranges numbers its lines from these.
        self.lines: list[int] = []
        self.header_left: list[bool] = []
        self._pending: list[tuple[int, str]] = []
        names = list(schema.names)
        self._names = names
        self._read_options = pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 26)
        self._convert_options = pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
        )

    def __iter__(self) -> Iterator[RecordChunk]:
        base = 0
        for index, source in enumerate(self.sources):
            self.files += 1
            if source.offset is not None:
                base = source.offset
            consumed = yield from self._read_file(source, index, base)
            base += consumed

    # -- one file ------------------------------------------------------------

    def _read_file(self, source: ByteSource, index: int, base: int):
        line_no = 0
        header_pending = self.schema.contains_header and source.header
        size = [0]

        def counted() -> Iterator[bytes]:
            for piece in source.chunks:
                size[0] += len(piece)
                yield piece

        for kind, payload, start in _blocks(counted(), self.chunk_bytes):
            self.bytes_read = base + size[0]
            if kind == "long":
                length = payload
                line_no += 1
                if header_pending:
                    header_pending = False
                    self.warnings.append(f"{source.name}: the header line is longer than {MAX_RECORD_BYTES} bytes")
                    continue
                self.records_read += 1
                if self.split.select(np.array([base + start], dtype=np.int64), self.total_size)[0]:
                    self.selected += 1
                    self._reject(source.name, [line_no], [f"record is longer than 100 KB ({length} bytes)"])
                    self._flush_rejections(source.name)
                continue
            buf = payload
            chunk, header_pending, line_no = self._read_block(
                buf, base + start, line_no, header_pending, source.name, index)
            self._flush_rejections(source.name)
            if chunk is not None and len(chunk):
                self.accepted += len(chunk)
                yield chunk
        self.bytes_read = base + size[0]
        self.lines.append(line_no)
        self.header_left.append(header_pending)
        return size[0]

    def _reject(self, file: str, lines, reasons) -> None:
        # Held until the block is done so that samples come out in line order.
        self._pending.extend(zip((int(x) for x in lines), reasons))

    def _flush_rejections(self, file: str) -> None:
        if self._pending:
            self._pending.sort()
            self.rejections.records_seen = self.records_read
            pending, self._pending = self._pending, []
            self.rejections.add(file, [line for line, _ in pending], [reason for _, reason in pending])

    def _read_block(self, buf: bytes, offset: int, line_no: int, header_pending: bool,
                    file: str, index: int):
        lines = _layout(buf, len(self._names), header_pending)
        n = len(lines.starts)
        numbers = np.arange(line_no + 1, line_no + n + 1, dtype=np.int64)
        lengths = lines.ends - lines.starts
        is_record = lengths > 0
        if header_pending and is_record.any():
            first = int(np.argmax(is_record))
            is_record[first] = False
            header_pending = False
            self._check_header(bytes(buf[lines.starts[first]:lines.ends[first]]), file)
        records = np.flatnonzero(is_record)
        self.records_read += len(records)
        chosen = records[self.split.select(offset + lines.starts[records], self.total_size)]
        self.selected += len(chosen)

        reasons = np.zeros(n, dtype=np.int8)
        malformed = _malformed(buf, lines)
        if malformed is not None:
            reasons[chosen] = malformed[chosen]
        too_long = lengths[chosen] > MAX_RECORD_BYTES
        reasons[chosen[too_long]] = 5
        bad = chosen[reasons[chosen] != 0]
        if len(bad):
            self._reject(file, numbers[bad], [
                f"record is longer than 100 KB ({lengths[i]} bytes)" if reasons[i] == 5
                else _MALFORMED_REASONS[int(reasons[i])] for i in bad])
            chosen = chosen[reasons[chosen] == 0]

        if not len(chosen):
            return None, header_pending, line_no + n
        table = fields = None
        if lines.cuts is not None:
            split = self._split_plain(lines, chosen, numbers, file)
            if split is not None:
                fields, chosen = split
        if fields is None:
            table, chosen = self._parse(buf, lines, chosen, n, numbers, file)
        chunk = RecordChunk(self.schema, table, offset + lines.starts[chosen], numbers[chosen], file, index,
                            fields)
        if self.require_target and len(chunk):
            chunk = self._drop_bad_targets(chunk)
        return chunk, header_pending, line_no + n

    def _split_plain(self, lines: _Lines, chosen: np.ndarray, numbers: np.ndarray, file: str):
        """Fields of lines without quotes or carriage returns, cut at their commas.

        Arrow's reader does more than such lines need (quoting, its own line
        scan, a copy of every field); `_layout` found the commas with the
        lines, and the fields stay where they are (`_Fields`). Blocks with
        non-ASCII bytes go to Arrow, which checks that they are valid UTF-8.
        """
        width = len(self._names)
        starts, ends = lines.starts[chosen], lines.ends[chosen]
        if len(lines.arr) >= 1 << 31:
            return None
        cuts, fields = lines.cuts, lines.fields
        if len(chosen) != len(lines.starts):
            cuts, fields = cuts[chosen], fields[chosen]
        wrong = np.flatnonzero(fields != width)
        if len(wrong):
            self._reject(file, numbers[chosen[wrong]],
                         [f"expected {width} fields, found {found}" for found in fields[wrong].tolist()])
            rows = fields == width
            starts, ends, cuts, chosen = starts[rows], ends[rows], cuts[rows], chosen[rows]
        return _Fields(lines.arr, starts, ends, cuts[:, :width - 1], lines.plain), chosen

    def _parse(self, buf: bytes, lines: _Lines, chosen: np.ndarray, n: int, numbers: np.ndarray, file: str):
        if len(chosen) == n:
            data = buf
        else:
            keep = np.zeros(n, dtype=bool)
            keep[chosen] = True
            data = lines.arr[np.repeat(keep, lines.spans)].tobytes()
        wrong_width: list[tuple[int, int]] = []

        def on_invalid(row) -> str:
            wrong_width.append((row.number, row.actual_columns))
            return "skip"

        parse_options = pa_csv.ParseOptions(newlines_in_values=False, ignore_empty_lines=True,
                                            invalid_row_handler=on_invalid)
        try:
            table = pa_csv.read_csv(io.BytesIO(data), read_options=self._read_options,
                                    parse_options=parse_options, convert_options=self._convert_options)
        except pa.ArrowInvalid:
            return self._parse_slowly(buf, lines, chosen, numbers, file)
        if wrong_width:
            rows = np.array([r for r, _ in wrong_width], dtype=np.int64) - 1
            if len(chosen) - len(rows) != table.num_rows:
                return self._parse_slowly(buf, lines, chosen, numbers, file)
            self._reject(file, numbers[chosen[rows]],
                         [f"expected {len(self._names)} fields, found {width}" for _, width in wrong_width])
            ok = np.ones(len(chosen), dtype=bool)
            ok[rows] = False
            chosen = chosen[ok]
        elif table.num_rows != len(chosen):
            return self._parse_slowly(buf, lines, chosen, numbers, file)
        return table, chosen

    def _parse_slowly(self, buf: bytes, lines: _Lines, chosen: np.ndarray, numbers: np.ndarray, file: str):
        raw = [bytes(buf[lines.starts[i]:lines.ends[i]]) for i in chosen]
        rows, reasons = _slow_parse(raw, len(self._names))
        bad = [i for i, r in enumerate(reasons) if r is not None]
        if bad:
            self._reject(file, numbers[chosen[bad]], [reasons[i] for i in bad])
        good = [r for r in rows if r is not None]
        columns = list(zip(*good)) if good else [[] for _ in self._names]
        table = pa.table({name: pa.array(list(col), pa.string()) for name, col in zip(self._names, columns)})
        ok = np.array([r is None for r in reasons], dtype=bool)
        return table, chosen[ok]

    def _drop_bad_targets(self, chunk: RecordChunk) -> RecordChunk:
        target = self.schema.target
        kind = self.schema.type_of(target)
        if kind in ("NUMERIC", "BINARY"):
            column = chunk.typed(target)
            missing, invalid = column.missing, column.invalid
        else:
            missing = cells.is_missing_column(chunk.column(target))
            invalid = np.zeros(len(chunk), dtype=bool)
        bad = missing | invalid
        if not bad.any():
            return chunk
        raw = chunk.column(target)
        where = np.flatnonzero(bad)
        self._reject(chunk.file_name, chunk.line_numbers[where], [
            f'target "{target}" is missing' if missing[i]
            else f'target "{target}" has the invalid value {raw[int(i)].as_py()!r}' for i in where])
        return chunk.take(~bad)

    def _check_header(self, line: bytes, file: str) -> None:
        names = _header_names(line)
        if names is None:
            self.warnings.append(f"{file}: the header line is not valid CSV")
            return
        names = [n.strip() for n in names]
        if names != self._names:
            self.warnings.append(
                f"{file}: header names {names} differ from the schema's attributes {self._names}; "
                "the schema's names are used")
