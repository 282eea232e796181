"""Reading and writing data locations: s3:// through the S3 API with the
server's standard AWS configuration (so AWS_ENDPOINT_URL_S3 points it at any
S3-compatible store), and file:// below the directories the operator allowed.

Failures become `LocationError`s whose text names the location and what is
wrong with it, ready to be a job's Message.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

from .. import disk
from .records import ByteSource

PIECE = 1 << 20


class LocationError(Exception):
    pass


class NotAllowed(LocationError):
    """A file:// location outside every directory the operator allowed."""


@dataclass(frozen=True)
class Confinement:
    """Which locations a request may name. Local paths must lie below an
    `allowed` directory. Nothing may lie inside Treadle's own storage
    (`reserved`: the data dir, a SQLite database, the artifact store), which
    holds every account's objects and the master key: an allowed directory
    or a bucket that contains it must not let one account read it as data."""
    allowed: tuple[Path, ...] = ()
    reserved: tuple[str, ...] = ()  # local paths, or s3://bucket/prefix
    # The console's upload directory: one folder per account, each readable
    # (and writable) only by requests of that account.
    uploads: Path | None = None

    def foreign_upload(self, path: Path, account: str | None) -> bool:
        """Whether `path` lies in another account's upload folder (or
        directly in the upload directory)."""
        if self.uploads is None or not _inside(path, [self.uploads]):
            return False
        return account is None or not _inside(path, [self.uploads / account])

    def reserves(self, uri: str) -> bool:
        if uri.startswith("s3://"):
            bucket, key = _split_s3(uri)
            return any(_s3_under(bucket, key, r) for r in self.reserved if r.startswith("s3://"))
        return _inside(Path(uri), [Path(r) for r in self.reserved if not r.startswith("s3://")])


def confinement(allowed) -> Confinement:
    """A Confinement, from one or from a list of allowed directories."""
    return allowed if isinstance(allowed, Confinement) else Confinement(tuple(allowed))


def _s3_under(bucket: str, key: str, reserved: str) -> bool:
    r_bucket, r_prefix = _split_s3(reserved)
    r_prefix = r_prefix.strip("/")
    return bucket == r_bucket and (not r_prefix or key == r_prefix or key.startswith(r_prefix + "/"))


def _reserved_error(uri: str) -> LocationError:
    return LocationError(f"{uri} is inside Treadle's own storage, which requests cannot name")


@dataclass(frozen=True)
class DataFile:
    uri: str
    size: int

    @property
    def name(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]


@functools.cache
def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def _s3_error(uri: str, error) -> LocationError:
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        bucket = _split_s3(uri)[0]
        if code in ("NoSuchBucket",):
            return LocationError(f"{uri}: the bucket {bucket} does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return LocationError(f"{uri}: no such object")
        if code in ("AccessDenied", "403", "Forbidden"):
            return LocationError(f"{uri}: access denied (check the server's AWS credentials and the bucket policy)")
        return LocationError(f"{uri}: S3 error {code}: {error.response.get('Error', {}).get('Message', '')}")
    return LocationError(f"{uri}: cannot reach S3: {error}")


def _inside(path: Path, allowed: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in allowed)


def _readable(real: Path, access: Confinement) -> bool:
    return _inside(real, access.allowed) and not access.reserves(str(real))


def local_path(uri: str, allowed) -> Path:
    access = confinement(allowed)
    if "?" in uri or "#" in uri:
        # urlsplit would drop what follows, so the path checked would not be
        # the path used (a file:// name spells these %3F and %23).
        raise LocationError(f"{uri} must not contain '?' or '#'")
    parts = urlsplit(uri)
    text = unquote(parts.path)
    if "\x00" in text:
        raise LocationError(f"{uri} must not contain a NUL character (%00)")
    path = Path(text).resolve()
    if not _inside(path, access.allowed):
        raise NotAllowed(f"{uri} is outside the local paths this server allows")
    if access.reserves(str(path)):
        raise _reserved_error(uri)
    return path


def check_s3(uri: str, access: Confinement) -> None:
    if access.reserves(uri):
        raise _reserved_error(uri)


def list_data_files(uri: str, allowed) -> list[DataFile]:
    """The data files a DataLocationS3 names: one object or file, or every
    one under a prefix or folder, in key order."""
    access = confinement(allowed)
    if uri.startswith("file://"):
        path = local_path(uri, access)
        if path.is_file():
            return [DataFile(path.as_uri(), path.stat().st_size)]
        if path.is_dir():
            # Every visible file below the folder, in path order; links that
            # lead outside the allowed directories, and Treadle's own
            # storage, are passed over.
            files = [p for p in sorted(path.rglob("*"))
                     if p.is_file() and not p.name.startswith(".") and _readable(p.resolve(), access)]
            if files:
                return [DataFile(p.as_uri(), p.stat().st_size) for p in files]
        raise LocationError(f"{uri}: no such file or folder")
    check_s3(uri, access)
    bucket, key = _split_s3(uri)
    client = s3_client()
    try:
        if key and not key.endswith("/"):
            try:
                head = client.head_object(Bucket=bucket, Key=key)
                return [DataFile(uri, head["ContentLength"])]
            except Exception as error:
                code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
                if code not in ("404", "NoSuchKey", "NotFound"):
                    raise
        files = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                name = item["Key"]
                if name.endswith("/") or name.rsplit("/", 1)[-1].startswith("."):
                    continue  # folder markers and hidden files such as .schema
                if access.reserves(f"s3://{bucket}/{name}"):
                    continue  # a bucket that also holds the artifact store
                files.append(DataFile(f"s3://{bucket}/{name}", item["Size"]))
    except LocationError:
        raise
    except Exception as error:
        raise _s3_error(uri, error)
    if not files:
        raise LocationError(f"{uri}: no data files found at this location")
    return sorted(files, key=lambda f: f.uri)


def byte_source(file: DataFile, allowed) -> ByteSource:
    return ByteSource(file.name, _read(file.uri, allowed), file.size)


def _read(uri: str, allowed, start: int = 0) -> Iterator[bytes]:
    access = confinement(allowed)
    if uri.startswith("file://"):
        with open(local_path(uri, access), "rb") as handle:
            handle.seek(start)
            while piece := handle.read(PIECE):
                yield piece
        return
    check_s3(uri, access)
    bucket, key = _split_s3(uri)
    try:
        if start:
            body = s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-")["Body"]
        else:
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        yield from body.iter_chunks(PIECE)
    except Exception as error:
        raise _s3_error(uri, error)


def read_from(file: DataFile, allowed, start: int) -> Iterator[bytes]:
    """A file's bytes from `start` to its end, in pieces: where a byte range
    of it is read (treadle/jobs/parts.py)."""
    if start >= file.size:
        return iter(())
    return _read(file.uri, allowed, start)


def read_text(uri: str, allowed, limit: int = 1 << 20) -> str:
    """A small text object: a schema or a recipe."""
    data = b""
    for piece in _read(uri, allowed):
        data += piece
        if len(data) > limit:
            raise LocationError(f"{uri}: larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise LocationError(f"{uri}: not UTF-8 text")


def join(base: str, name: str) -> str:
    return base if base.endswith("/") and not name else (base.rstrip("/") + "/" + name.lstrip("/"))


def canonical(uri: str, allowed) -> str:
    """The one spelling of the object `uri` names, whatever the spelling
    given: a file:// URI with `..` and links resolved. Claims on output
    objects are keyed by it."""
    access = confinement(allowed)
    if uri.startswith("file://"):
        return local_path(uri, access).as_uri()
    check_s3(uri, access)
    return uri


def exists(uri: str, allowed) -> bool:
    """Whether an object or file is at `uri` (a folder counts too)."""
    access = confinement(allowed)
    if uri.startswith("file://"):
        return os.path.lexists(local_path(uri, access))
    check_s3(uri, access)
    bucket, key = _split_s3(uri)
    try:
        s3_client().head_object(Bucket=bucket, Key=key)
        return True
    except Exception as error:
        if getattr(error, "response", {}).get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise _s3_error(uri, error)


def write_file(local: str | os.PathLike, uri: str, allowed) -> None:
    """Publish a finished local file at `uri`: readers see all of it or nothing."""
    access = confinement(allowed)
    if uri.startswith("file://"):
        _publish_local(local_path(uri, access), uri, lambda tmp: shutil.copyfile(local, tmp))
        return
    check_s3(uri, access)
    bucket, key = _split_s3(uri)
    try:
        # A multipart upload that fails is aborted by the transfer manager,
        # so no part of it is left behind in the bucket.
        s3_client().upload_file(str(local), bucket, key)
    except Exception as error:
        raise _s3_error(uri, error)


def write_bytes(data: bytes, uri: str, allowed) -> None:
    access = confinement(allowed)
    if uri.startswith("file://"):
        _publish_local(local_path(uri, access), uri, lambda tmp: Path(tmp).write_bytes(data))
        return
    check_s3(uri, access)
    bucket, key = _split_s3(uri)
    try:
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    except Exception as error:
        raise _s3_error(uri, error)


def _publish_local(target: Path, uri: str, fill) -> None:
    """`fill` writes a temporary file next to `target`, renamed over it once
    complete. The temporary file is removed on any failure: it lies in the
    user's folder."""
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        fill(tmp)
        os.replace(tmp, target)
    except BaseException as error:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(error, OSError):
            raise _write_error(uri, error) from None
        raise


def _write_error(uri: str, error: OSError) -> LocationError:
    # The URI is the user's; the OSError's text would name the server's paths.
    full = disk.full_disk(error)
    if full:
        return LocationError(f"The disk holding {uri} is full ({full})")
    return LocationError(f"{uri}: cannot write: {error.strerror or type(error).__name__}")
