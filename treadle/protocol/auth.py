"""Who is calling: AWS Signature Version 4, verified by recomputing the
signature against the stored secret.

The canonical request is built here rather than through botocore's signer:
botocore prepares a whole AWSRequest (URL parsing, email-style headers,
body preparation) for every verification, which cost more than the rest of
a Predict. The result is the string botocore's SigV4Auth would build for
the same request; paths other than "/" go through botocore's own path
normalisation.
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import hashlib
import hmac
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from botocore.utils import normalize_url_path

from ..config import DEFAULT_ACCOUNT
from ..store.credentials import ACCOUNT_PATTERN, CredentialStore
from . import errors

SIGNING_SERVICE = "machinelearning"
MAX_SKEW = dt.timedelta(minutes=15)
_MAX_SKEW_SECONDS = MAX_SKEW.total_seconds()
_CACHE_SECONDS = 5.0  # how long a revoked key may still be honoured
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True)
class Principal:
    account: str
    user_name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.user_name}"


@functools.lru_cache(maxsize=1024)
def _amz_epoch(amz_date: str) -> float:
    # Every request signed within the same second carries the same stamp,
    # so strptime runs about once per second rather than per request.
    when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    return float(calendar.timegm(when.timetuple()))


def _canonical_path(path: str) -> str:
    if path == "/":
        return path
    return quote(normalize_url_path(path), safe="/~")


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)


@functools.lru_cache(maxsize=256)
def _signed_names(signed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name.strip().lower() for name in signed)


def check_signed_headers(headers, signed_headers: list[str]) -> None:
    """`host` and every `x-amz-*` header of the request must be signed
    (docs/behaviour.md, "Signing"): an unsigned X-Amz-Target would let a
    captured GetMLModel be replayed as a DeleteMLModel."""
    signed = _signed_names(tuple(signed_headers))  # no copy when given a tuple
    if "host" not in signed:
        raise errors.InvalidSignatureException("'Host' must be a signed header")
    unsigned = sorted(name for name in headers if name.startswith("x-amz-") and name not in signed)
    if unsigned:
        raise errors.InvalidSignatureException(
            f"There were headers present in the request which were not signed: {', '.join(unsigned)}")


@functools.lru_cache(maxsize=256)
def _signed_header_layout(signed: tuple[str, ...]) -> tuple[tuple[str, str, int], ...]:
    """(name as signed, lower-case name, times signed) per distinct signed
    header, in canonical order; every request of a client signs the same
    list, so this is worked out once per list."""
    return tuple((name, name.lower(), signed.count(name)) for name in sorted(set(signed)))


def canonical_request(method: str, path: str, query: str, headers, signed_headers: list[str],
                      payload_hash: str) -> str:
    """SigV4's canonical request. `headers` maps lower-case names to one
    value each; signed names absent from the request are left out, as
    botocore does when it re-signs the request it was given."""
    lines = []
    present = []
    for name, lower, repeat in _signed_header_layout(tuple(signed_headers)):
        value = headers.get(lower)
        if value is None:
            continue
        value = " ".join(value.split())
        lines.append(f"{name}:{value if repeat == 1 else ','.join([value] * repeat)}")
        present.append(lower.strip())
    return "\n".join((method.upper(), _canonical_path(path), _canonical_query(query), "\n".join(lines) + "\n",
                      ";".join(sorted(present)), payload_hash))


# The Authorization header as botocore and the AWS SDKs write it.
_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/([^/,\s]+)/([^/,\s]+)/([^/,\s]+)/aws4_request, "
                            r"SignedHeaders=([^,\s]+), Signature=([^,\s]+)")


def _parse_authorization(header: str) -> tuple[str, list[str], str, list[str]]:
    usual = _AUTHORIZATION.fullmatch(header)
    if usual is not None:
        key, date, region, service, signed, signature = usual.groups()
        return key, [date, region, service, "aws4_request"], signature, signed.split(";")
    algorithm, _, rest = header.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise errors.IncompleteSignatureException(
            f"Unsupported authorization algorithm {algorithm!r}; use AWS4-HMAC-SHA256")
    fields = {}
    for part in rest.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields[key] = value
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise errors.IncompleteSignatureException(
            f"Authorization header requires {', '.join(missing)}")
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise errors.IncompleteSignatureException(
            "Credential must have the form <key>/<date>/<region>/<service>/aws4_request")
    return scope[0], scope[1:], fields["Signature"], fields["SignedHeaders"].split(";")


class SigningKey:
    """HMAC-SHA256 under one derived signing key, with the key's two padded
    blocks hashed once (RFC 2104's construction): a signature then costs two
    hash copies rather than the HMAC key set-up that hmac.digest repeats on
    every call, about half of it."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes):
        block = key.ljust(64, b"\0")  # a derived key (32 bytes) is shorter than SHA-256's 64-byte block
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


class Authenticator:
    def __init__(self, mode: str, credentials: CredentialStore | None = None):
        self.mode = mode
        self.credentials = credentials
        self._keys: dict[str, tuple[float, object, Principal | None]] = {}
        self._signing_keys: dict[tuple[str, str, str, str], SigningKey] = {}
        self._lock = threading.Lock()

    # -- credential cache ----------------------------------------------------
    def _lookup(self, access_key_id: str):
        """(the access key or None, its Principal)."""
        cached = self._keys.get(access_key_id)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        key = self.credentials.lookup(access_key_id)
        principal = Principal(key.account, key.user_name) if key is not None else None
        with self._lock:
            self._keys[access_key_id] = (time.monotonic() + _CACHE_SECONDS, key, principal)
        return key, principal

    def _signing_key(self, secret: str, access_key_id: str, date: str, region: str, service: str) -> SigningKey:
        # The signing key depends only on the secret and the scope, so it is
        # derived once per day and scope rather than on every request.
        cache_key = (access_key_id, date, region, service)
        key = self._signing_keys.get(cache_key)
        if key is None:
            derived = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
            for part in (region, service, "aws4_request"):
                derived = hmac.new(derived, part.encode(), hashlib.sha256).digest()
            key = SigningKey(derived)
            with self._lock:
                if len(self._signing_keys) > 10000:
                    self._signing_keys.clear()
                self._signing_keys[cache_key] = key
        return key

    def forget(self, access_key_id: str) -> None:
        with self._lock:
            self._keys.pop(access_key_id, None)
            for cache_key in [k for k in self._signing_keys if k[0] == access_key_id]:
                del self._signing_keys[cache_key]

    # -- verification --------------------------------------------------------
    def authenticate(self, method: str, url: str, headers, body: bytes) -> Principal:
        """`headers`: a Starlette Headers (or any mapping with .items());
        a repeated header counts with its last value."""
        if self.mode == "none":
            return self._unauthenticated(headers)
        parts = urlsplit(url)
        return self.verify(method, parts.path, parts.query, {k.lower(): v for k, v in headers.items()}, body)

    def verify(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Principal:
        """The same check with the request's parts already separated and
        `headers` keyed by lower-case name."""
        if self.mode == "none":
            return self._unauthenticated(headers)
        header = headers.get("authorization")
        if not header:
            raise errors.MissingAuthenticationTokenException("Request is missing Authentication Token")
        access_key_id, scope, claimed, signed_headers = _parse_authorization(header)
        signed_headers = tuple(signed_headers)  # the caches' key, made once
        date, region, service = scope[0], scope[1], scope[2]
        if service != SIGNING_SERVICE:
            raise errors.InvalidSignatureException(
                f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'.")
        check_signed_headers(headers, signed_headers)
        amz_date = headers.get("x-amz-date")
        if not amz_date:
            raise errors.IncompleteSignatureException("Request must contain a valid X-Amz-Date header")
        try:
            when = _amz_epoch(amz_date)
        except ValueError:
            raise errors.IncompleteSignatureException("X-Amz-Date must have the form YYYYMMDDTHHMMSSZ")
        if amz_date[:8] != date:
            raise errors.InvalidSignatureException("Credential date does not match X-Amz-Date")
        now = time.time()
        if abs(now - when) > _MAX_SKEW_SECONDS:
            current = dt.datetime.now(dt.timezone.utc)
            raise errors.SignatureExpiredException(
                f"Signature expired: {amz_date} is now earlier or later than "
                f"{(current - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} - {(current + MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')}")
        key, principal = self._lookup(access_key_id)
        if key is None:
            raise errors.UnrecognizedClientException("The security token included in the request is invalid.")
        payload_hash = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha is not None and content_sha != payload_hash:
            raise errors.InvalidSignatureException("X-Amz-Content-SHA256 does not match the request body")
        canonical = canonical_request(method, path, query, headers, signed_headers, payload_hash)
        string_to_sign = (f"AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{SIGNING_SERVICE}/aws4_request\n"
                          f"{hashlib.sha256(canonical.encode()).hexdigest()}")
        signing_key = self._signing_key(key.secret_access_key, access_key_id, date, region, service)
        expected = signing_key.hexdigest(string_to_sign.encode())
        # Compared as bytes: compare_digest refuses str with non-ASCII characters.
        if not hmac.compare_digest(expected.encode(), claimed.encode("utf-8", "replace")):
            raise errors.InvalidSignatureException(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
        return principal

    def _unauthenticated(self, headers) -> Principal:
        header = headers.get("authorization", "")
        access_key_id = ""
        if "Credential=" in header:
            access_key_id = header.split("Credential=", 1)[1].split("/", 1)[0]
        account = access_key_id if ACCOUNT_PATTERN.fullmatch(access_key_id) else DEFAULT_ACCOUNT
        return Principal(account, "treadle")
