"""Who is calling: AWS Signature Version 4, verified by recomputing it with
botocore's own signer against the stored secret."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..config import DEFAULT_ACCOUNT
from ..store.credentials import ACCOUNT_PATTERN, CredentialStore
from . import errors

SIGNING_SERVICE = "machinelearning"
MAX_SKEW = dt.timedelta(minutes=15)
_CACHE_SECONDS = 5.0  # how long a revoked key may still be honoured


@dataclass(frozen=True)
class Principal:
    account: str
    user_name: str

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.user_name}"


class _Verifier(SigV4Auth):
    """botocore's signer, told which headers the client signed and given a
    cached signing key instead of the raw secret."""

    def __init__(self, credentials, region, signed_headers, signing_key):
        super().__init__(credentials, SIGNING_SERVICE, region)
        self._signed = signed_headers
        self._signing_key = signing_key

    def headers_to_sign(self, request):
        from botocore.awsrequest import HTTPHeaders

        chosen = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) if hasattr(request.headers, "get_all") else [request.headers.get(name)]:
                if value is not None:
                    chosen.add_header(name, value)
        return chosen

    def signature(self, string_to_sign, request):
        return hmac.new(self._signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _parse_authorization(header: str) -> tuple[str, list[str], str, list[str]]:
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


class Authenticator:
    def __init__(self, mode: str, credentials: CredentialStore | None = None):
        self.mode = mode
        self.credentials = credentials
        self._keys: dict[str, tuple[float, object]] = {}
        self._signing_keys: dict[tuple[str, str, str, str], bytes] = {}
        self._lock = threading.Lock()

    # -- credential cache ----------------------------------------------------
    def _lookup(self, access_key_id: str):
        cached = self._keys.get(access_key_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        key = self.credentials.lookup(access_key_id)
        with self._lock:
            self._keys[access_key_id] = (time.monotonic() + _CACHE_SECONDS, key)
        return key

    def _signing_key(self, secret: str, access_key_id: str, date: str, region: str, service: str) -> bytes:
        # The signing key depends only on the secret and the scope, so it is
        # derived once per day and scope rather than on every request.
        cache_key = (access_key_id, date, region, service)
        key = self._signing_keys.get(cache_key)
        if key is None:
            key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
            for part in (region, service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
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
        if self.mode == "none":
            return self._unauthenticated(headers)
        header = headers.get("authorization")
        if not header:
            raise errors.MissingAuthenticationTokenException("Request is missing Authentication Token")
        access_key_id, scope, claimed, signed_headers = _parse_authorization(header)
        date, region, service = scope[0], scope[1], scope[2]
        if service != SIGNING_SERVICE:
            raise errors.InvalidSignatureException(
                f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'.")
        if "host" not in signed_headers:
            raise errors.InvalidSignatureException("'Host' must be a signed header")
        amz_date = headers.get("x-amz-date")
        if not amz_date:
            raise errors.IncompleteSignatureException("Request must contain a valid X-Amz-Date header")
        try:
            when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise errors.IncompleteSignatureException("X-Amz-Date must have the form YYYYMMDDTHHMMSSZ")
        if amz_date[:8] != date:
            raise errors.InvalidSignatureException("Credential date does not match X-Amz-Date")
        current = dt.datetime.now(dt.timezone.utc)
        if abs(current - when) > MAX_SKEW:
            raise errors.SignatureExpiredException(
                f"Signature expired: {amz_date} is now earlier or later than "
                f"{(current - MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')} - {(current + MAX_SKEW).strftime('%Y%m%dT%H%M%SZ')}")
        key = self._lookup(access_key_id)
        if key is None:
            raise errors.UnrecognizedClientException("The security token included in the request is invalid.")
        content_sha = headers.get("x-amz-content-sha256")
        if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
            raise errors.InvalidSignatureException("X-Amz-Content-SHA256 does not match the request body")
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers.items()))
        request.context["timestamp"] = amz_date
        verifier = _Verifier(Credentials(access_key_id, "unused"), region, signed_headers,
                             self._signing_key(key.secret_access_key, access_key_id, date, region, service))
        expected = verifier.signature(verifier.string_to_sign(request, verifier.canonical_request(request)), request)
        if not hmac.compare_digest(expected, claimed):
            raise errors.InvalidSignatureException(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.")
        return Principal(key.account, key.user_name)

    def _unauthenticated(self, headers) -> Principal:
        header = headers.get("authorization", "")
        access_key_id = ""
        if "Credential=" in header:
            access_key_id = header.split("Credential=", 1)[1].split("/", 1)[0]
        account = access_key_id if ACCOUNT_PATTERN.fullmatch(access_key_id) else DEFAULT_ACCOUNT
        return Principal(account, "treadle")
