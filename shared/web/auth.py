"""Who may call which route: Google-signed ID tokens, checked per route (docs/design.md, "Who may call").

Cloud Run's IAM admits a caller to a service, not to one of its routes, so each app names the callers
of each of its routes (`Callers`: the setting that lists their emails) and `Gate.check` decides:

    GET /healthz                                                        open
    local (no K_SERVICE) and no OIDC_AUDIENCE                           open (the emulator's push has no token)
    on Cloud Run without OIDC_AUDIENCE, or a route without callers      503, and logged at start-up
    no `Authorization: Bearer <token>`, or not a valid Google ID token  401
        (RS256 by one of Google's certificates, `aud` = OIDC_AUDIENCE, issuer accounts.google.com,
        not expired, `email_verified` true)
    a valid token whose `email` is not among the route's callers        403

Google's certificates are fetched once and kept for the max-age of their Cache-Control, and fetched
again early (at most once a minute) only for a key id not seen yet, which is how a rotation shows.
A check may block on that fetch, so the middleware runs it in a worker thread, never on the event
loop (the loader's batcher runs there).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

from shared.core.errors import redact
from shared.settings import CloudSettings

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"  # PEM certificates by key id
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
OPEN_PATHS = frozenset({"/healthz"})
CLOCK_SKEW_SECONDS = 30

# What a certificate source returns: PEM certificates by key id, and how many seconds they may be kept.
CertificateSource = Callable[[], tuple[Mapping[str, str], float]]


class Callers(StrEnum):
    """Who a route admits, named by the setting (shared/settings.py) that lists their emails."""

    SCHEDULER = "allowed_scheduler_emails"
    OPERATORS = "allowed_operator_emails"
    PUSH = "allowed_push_emails"

    @property
    def variable(self) -> str:
        return self.value.upper()


Routes = Mapping[tuple[str, str], Callers]  # (method, path) -> who may call it


def max_age(cache_control: str | None, default: float = 300.0) -> float:
    """Seconds a response may be kept, from its Cache-Control header (`default` without max-age)."""
    found = re.search(r"(?:^|[,\s])max-age\s*=\s*(\d+)", cache_control or "", re.IGNORECASE)
    return float(found.group(1)) if found else default


def google_certificates(url: str = GOOGLE_CERTS_URL, timeout: float = 10.0) -> tuple[dict[str, str], float]:
    """Google's ID-token signing certificates and their max-age (the default source of `Certificates`)."""
    response = requests.get(url, timeout=timeout, allow_redirects=False)
    response.raise_for_status()
    certs = response.json()
    if not isinstance(certs, dict) or not certs:
        raise ValueError(f"{url} did not answer with certificates by key id")
    return certs, max_age(response.headers.get("Cache-Control"))


class Certificates:
    """The certificates of a source, fetched once and kept for their max-age (thread-safe)."""

    def __init__(
        self,
        source: CertificateSource = google_certificates,
        *,
        now: Callable[[], float] = time.monotonic,
        min_refetch_seconds: float = 60.0,
    ) -> None:
        self._source, self._now, self._min_refetch = source, now, min_refetch_seconds
        self._lock = threading.Lock()
        self._certs: Mapping[str, str] = {}
        self._expires = self._fetched = -math.inf

    def for_key(self, kid: str | None) -> Mapping[str, str]:
        certs, now = self._certs, self._now()
        if now < self._expires and (kid is None or kid in certs):
            return certs
        with self._lock:  # one fetch at a time; whoever waited on it uses its result
            now = self._now()
            unknown = kid is not None and kid not in self._certs
            if now >= self._expires or (unknown and now - self._fetched >= self._min_refetch):
                certs, seconds = self._source()
                self._certs, self._fetched, self._expires = dict(certs), now, now + max(0.0, seconds)
            return self._certs


class Refused(Exception):
    """Why a request is not let in, and the status that says so (401, 403 or 503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, redact(reason)


@dataclass(frozen=True)
class Verifier:
    audience: str
    certificates: Certificates

    def email(self, authorization: str | None) -> str:
        """The verified email of a Google ID token in an Authorization header, or Refused."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Refused(401, "missing bearer token")
        try:
            header = jwt.decode_header(token)
        except (auth_exceptions.GoogleAuthError, ValueError, TypeError):
            raise Refused(401, "invalid token: not a JWT") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            alg = header.get("alg") if isinstance(header, dict) else None
            raise Refused(401, f"invalid token: signed with {alg!r}, not RS256")
        kid = header.get("kid")
        try:
            certs = self.certificates.for_key(kid if isinstance(kid, str) else None)
        except Exception as exc:  # not the caller's fault: 503, and Pub/Sub redelivers
            raise Refused(503, f"cannot fetch Google's certificates: {type(exc).__name__}: {exc}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token, certs=certs, audience=self.audience, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
            )
        except (auth_exceptions.GoogleAuthError, ValueError, TypeError) as exc:
            raise Refused(401, f"invalid token: {exc}") from None
        if claims.get("iss") not in ISSUERS:
            raise Refused(401, f"invalid token: issuer {claims.get('iss')!r} is not accounts.google.com")
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            raise Refused(401, "invalid token: no email claim (mint it with --include-email)")
        if claims.get("email_verified") is not True:
            raise Refused(401, f"invalid token: the email {email} is not verified")
        return email.lower()


class Gate:
    """The per-route decision for one service, from its settings and its routes."""

    def __init__(self, settings: CloudSettings, routes: Routes, certificates: Certificates | None = None) -> None:
        self.audience = settings.oidc_audience or None
        self.on_cloud_run = bool(settings.k_service)
        self.enforced = bool(self.audience) or self.on_cloud_run
        self.routes = {(m.upper(), p): c for (m, p), c in routes.items()}
        self.allowed = {c: frozenset(e for e in getattr(settings, c.value).split(",") if e) for c in Callers}
        self.verifier = Verifier(self.audience, certificates or Certificates()) if self.audience else None

    def problems(self) -> list[str]:
        """What makes the gate refuse every caller of a route (logged once at start-up)."""
        if not self.enforced:
            return []
        if self.verifier is None:
            return ["OIDC_AUDIENCE is not set on Cloud Run: every call but /healthz is refused"]
        return [
            f"{callers.variable} is empty: {method} {path} is refused to everyone"
            for (method, path), callers in sorted(self.routes.items())
            if not self.allowed[callers]
        ]

    def check(self, method: str, path: str, authorization: str | None) -> Refused | None:
        """None to let the request in, else why not. Blocking: call it from a worker thread."""
        if path in OPEN_PATHS or not self.enforced:
            return None
        if self.verifier is None:
            return Refused(503, "OIDC_AUDIENCE is not set on Cloud Run: calls are refused")
        callers = self.routes.get(("GET" if method.upper() == "HEAD" else method.upper(), path))
        if callers is not None and not self.allowed[callers]:
            return Refused(503, f"{callers.variable} is not set: no caller may {method} {path}")
        try:
            email = self.verifier.email(authorization)
        except Refused as refused:
            return refused
        if callers is None:
            return Refused(403, f"{method} {path} is not a route anyone may call")
        if email not in self.allowed[callers]:
            return Refused(403, f"{email} may not {method} {path} (not in {callers.variable})")
        return None
