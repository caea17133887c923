"""Google-style ID tokens signed by keys generated here, and a certificate source serving their
certificates: the real verifier (shared/web/auth.py) checks them exactly as it checks Google's."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt


class Key:
    """An RSA key with a key id and its self-signed certificate (PEM), as Google publishes them."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, kid)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.private, hashes.SHA256())
        )
        self.certificate = cert.public_bytes(serialization.Encoding.PEM).decode()
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.signer = crypt.RSASigner.from_string(pem, key_id=kid)

    def token(
        self,
        email: str,
        audience: str,
        *,
        issuer: str = "https://accounts.google.com",
        expires_in: float = 3600,
        email_verified: bool = True,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": issuer,
            "aud": audience,
            "sub": "1234567890",
            "email": email,
            "email_verified": email_verified,
            "iat": now if expires_in > 0 else now - 7200,
            "exp": int(now + expires_in),
            **claims,
        }
        return jwt.encode(self.signer, payload).decode()


def unsigned(email: str, audience: str) -> str:
    """A token with `alg: none` and no signature."""
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": audience, "email": email, "email_verified": True}
    parts = [{"alg": "none", "typ": "JWT"}, {**claims, "iat": now, "exp": now + 3600}]
    return ".".join(base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") for p in parts) + "."


class CertificateSource:
    """Serves the certificates of `keys` (max-age `seconds`), counting the calls; `hold()` makes the next
    call wait until `release()` (a slow fetch), and `add()` publishes another key (a rotation)."""

    def __init__(self, *keys: Key, seconds: float = 3600) -> None:
        self.keys = list(keys)
        self.seconds = seconds
        self.calls = 0
        self.entered = threading.Event()
        self._gate: threading.Event | None = None

    def __call__(self) -> tuple[dict[str, str], float]:
        self.calls += 1
        self.entered.set()
        if self._gate is not None:
            assert self._gate.wait(30), "the test never released the certificate fetch"
        return {k.kid: k.certificate for k in self.keys}, self.seconds

    def add(self, key: Key) -> None:
        self.keys.append(key)

    def hold(self) -> None:
        self.entered.clear()
        self._gate = threading.Event()

    def release(self) -> None:
        assert self._gate is not None
        self._gate.set()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
