"""Data locations accepted in requests: s3:// URIs, and file:// URIs only
below the directories the operator allowed and outside other accounts'
upload folders (docs/behaviour.md, "Data locations")."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..data import locations as data_locations

from ..protocol.errors import InvalidInputException


class LocationNotAllowed(InvalidInputException):
    """A file:// location below no allowed directory. An InvalidInputException
    on the wire; the in-process mock tells the test how to allow it."""

    def __init__(self, message: str, uri: str):
        super().__init__(message)
        self.uri = uri


def local_path(uri: str, access: data_locations.Confinement, account: str | None = None) -> Path:
    """Resolve a file:// URI (following `..` and links) and insist it lies
    below an allowed directory, and in no upload folder but `account`'s."""
    try:
        netloc = urlsplit(uri).netloc
    except ValueError as error:
        raise InvalidInputException(f"{_short(uri)} is not a valid URI: {error}")
    if netloc not in ("", "localhost"):
        raise InvalidInputException(f"{uri} must be a local file:// URI (file:///path)")
    if not access.allowed:
        raise LocationNotAllowed(
            f"{uri} is a local path, but this server allows no local paths (start it with --allow-local-path DIR)",
            uri)
    try:
        path = data_locations.local_path(uri, access)
    except data_locations.NotAllowed as error:
        raise LocationNotAllowed(str(error), uri)
    except data_locations.LocationError as error:
        raise InvalidInputException(str(error))
    if access.foreign_upload(path, account):
        raise InvalidInputException(f"{uri} is in the console's upload folder of another account")
    return path


def _short(uri: str) -> str:
    return uri if len(uri) <= 200 else uri[:197] + "..."


def check_location(member: str, uri: str, access: data_locations.Confinement, output: bool = False,
                   account: str | None = None) -> None:
    """`account`: the caller's; None lets no upload folder be named."""
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        if not bucket:
            raise InvalidInputException(f"{member} {uri} names no bucket")
        try:
            data_locations.check_s3(uri, access)
        except data_locations.LocationError as error:
            raise InvalidInputException(f"{member} {error}")
        if output:
            _check_output_key(member, key)
        return
    if uri.startswith("file://"):
        path = local_path(uri, access, account)
        if output:
            _check_output_key(member, urlsplit(uri).path)
            _check_output_folder(member, uri, path)
        return
    raise InvalidInputException(f"{member} must be an s3:// or file:// URI")


def _check_output_folder(member: str, uri: str, path: Path) -> None:
    """Output goes below the folder `path`: none of it may be a file."""
    for folder in (path, *path.parents):
        if folder.is_file():
            shown = "it" if folder == path else folder.as_uri()
            raise InvalidInputException(f"{member} {uri} must name a folder, but {shown} is a file")
        if folder.is_dir():
            return


def _check_output_key(member: str, key: str) -> None:
    # The service model forbids these in OutputUri's key part.
    for bad in (":", "//", "/./", "/../"):
        if bad in key:
            raise InvalidInputException(f"{member} must not contain {bad!r} in its key part")
