"""Signing keys and the JWTs every call carries (PyJWT; EdDSA by default, RS256 accepted).

- A person's token names them (`sub`, `email`); it grants no role: roles come from account teams.
- `tenure_role: operator` and `tenure_role: service` are claims only the vendor's issuer puts on a
  token; they are honoured only on tokens from the configured issuer, signed by a trusted key.
- The embedded default keeps one Ed25519 key under `TENURE_AUTH_KEY_DIR` (created on first start);
  a real identity provider plugs in with `TENURE_AUTH_JWKS_FILE` or `TENURE_AUTH_PUBLIC_KEY_FILE`.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, cast

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey, Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from shared.auth.principal import Kind, Principal
from shared.errors import Unauthenticated

ROLE_CLAIM = "tenure_role"
PARTNER_CLAIM = "tenure_partner"  # a person's token: the partner organisation they are staff of (rules §9)
SIGNING_KEY_NAME = "signing-key.pem"
ALGORITHMS = ("EdDSA", "RS256")

# The private keys PyJWT signs with and the public keys it verifies with (EdDSA and RS256 among them).
SigningKey: TypeAlias = RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey | Ed448PrivateKey
# The public keys PyJWT verifies with (what a PEM or JWKS holds for EdDSA and RS256).
VerifyingKey: TypeAlias = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey
Claims: TypeAlias = dict[str, Any]


def ensure_signing_key(path: str | Path) -> Path:
    """Create an Ed25519 private key (PEM, mode 0600) at `path` unless one is there; return the path."""
    p = Path(path)
    if p.exists():
        return p
    p.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = p.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(tmp, p)  # atomic, and never overwrites a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return p


def load_private_key(path: str | Path) -> SigningKey:
    return cast(SigningKey, serialization.load_pem_private_key(Path(path).read_bytes(), password=None))


def _algorithm_of(key: SigningKey) -> str:
    return "EdDSA" if isinstance(key, Ed25519PrivateKey) else "RS256"


class TokenIssuer:
    """Mints tokens with the vendor's signing key: people, operators and the services themselves."""

    def __init__(self, private_key: SigningKey, issuer: str, audience: str, key_id: str = "") -> None:
        self.key = private_key
        self.issuer = issuer
        self.audience = audience
        self.algorithm = _algorithm_of(private_key)
        self.key_id = key_id

    @classmethod
    def from_file(cls, path: str | Path, issuer: str, audience: str) -> TokenIssuer:
        return cls(load_private_key(path), issuer, audience)

    def mint(
        self,
        subject: str,
        *,
        email: str = "",
        role: str = "",
        ttl_seconds: float = 3600,
        now: float | None = None,
        extra: Claims | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims: Claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "iat": issued,
            "nbf": issued - 5,
            "exp": issued + int(ttl_seconds),
            "jti": uuid.uuid4().hex,
        }
        if email:
            claims["email"] = email
        if role:
            claims[ROLE_CLAIM] = role
        claims.update(extra or {})
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)

    def person(self, email: str, ttl_seconds: float = 3600, *, partner: str = "") -> str:
        """A person's token; `partner`: the partner organisation they act for (claim `tenure_partner`)."""
        e = email.strip().lower()
        extra = {PARTNER_CLAIM: partner.strip()} if partner.strip() else None
        return self.mint(e, email=e, ttl_seconds=ttl_seconds, extra=extra)

    def operator(self, name: str = "operator", ttl_seconds: float = 3600) -> str:
        return self.mint(name, email=name if "@" in name else "", role="operator", ttl_seconds=ttl_seconds)

    def service(self, name: str, ttl_seconds: float = 3600) -> str:
        return self.mint(f"service:{name}", role="service", ttl_seconds=ttl_seconds)


def public_keys_from_jwks(path: str | Path) -> dict[str, object]:
    """kid → public key of every key in a JWKS file (a real identity provider's published keys)."""
    data = json.loads(Path(path).read_text())
    keys: dict[str, object] = {}
    for i, jwk in enumerate(data.get("keys", [])):
        keys[jwk.get("kid") or f"key{i}"] = jwt.PyJWK(jwk).key
    return keys


def public_key_from_pem(path: str | Path) -> PublicKeyTypes:
    raw = Path(path).read_bytes()
    if b"PRIVATE KEY" in raw:
        return serialization.load_pem_private_key(raw, password=None).public_key()
    return serialization.load_pem_public_key(raw)


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    exp: float


class TokenVerifier:
    """Checks a token's signature, `exp`/`nbf`, issuer and audience and turns it into a principal.

    Verified tokens are remembered (up to `cache_size`, never past their `exp`), so a client that
    sends the same token on every call pays for the signature check once.
    """

    def __init__(
        self,
        keys: dict[str, object],
        issuer: str,
        audience: str,
        *,
        leeway: float = 30,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ValueError("a token verifier needs at least one public key")
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.clock = clock
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                if now <= hit.exp + self.leeway:
                    self._cache.move_to_end(token)
                    return hit.principal
                del self._cache[token]
        claims = self._decode(token)
        self._check_times(claims, now)
        principal = principal_of(claims)
        with self._lock:
            self._cache[token] = _Cached(principal, float(claims["exp"]))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _check_times(self, claims: Claims, now: float) -> None:
        try:
            exp = float(claims["exp"])
            nbf = float(claims.get("nbf", 0))
        except (TypeError, ValueError):
            raise Unauthenticated("the token's exp or nbf is not a number") from None
        if now > exp + self.leeway:
            raise Unauthenticated("the token has expired; get a new one")
        if now + self.leeway < nbf:
            raise Unauthenticated("the token is not valid yet")

    def _decode(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT") from None
        kid = header.get("kid")
        candidates = [self.keys[kid]] if kid in self.keys else list(self.keys.values())
        last: Exception | None = None
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    cast(VerifyingKey, key),
                    algorithms=list(ALGORITHMS),
                    audience=self.audience,
                    issuer=self.issuer,
                    # times are checked against this verifier's clock (_check_times)
                    options={
                        "require": ["exp", "iss", "aud", "sub"],
                        "verify_exp": False,
                        "verify_nbf": False,
                    },
                )
            except jwt.InvalidSignatureError as exc:
                last = exc
                continue
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("the token has expired; get a new one") from None
            except jwt.ImmatureSignatureError:
                raise Unauthenticated("the token is not valid yet") from None
            except jwt.InvalidAudienceError:
                raise Unauthenticated(f"the token is not for this audience ({self.audience})") from None
            except jwt.InvalidIssuerError:
                raise Unauthenticated(f"the token is not from the trusted issuer ({self.issuer})") from None
            except jwt.PyJWTError as exc:
                raise Unauthenticated(f"the token is not valid: {exc}") from None
        raise Unauthenticated("the token is not signed by a trusted key") from last


def principal_of(claims: Claims) -> Principal:
    role = str(claims.get(ROLE_CLAIM) or "")
    sub = str(claims.get("sub") or "")
    email = str(claims.get("email") or "").strip().lower()
    if role == "operator":
        return Principal(Kind.OPERATOR, sub, email=email)
    if role == "service":
        return Principal(Kind.SERVICE, sub)
    if role:
        raise Unauthenticated(f"unknown {ROLE_CLAIM} {role!r} on the token")
    if not email:
        if "@" not in sub:
            raise Unauthenticated("a person's token must name their e-mail (email or sub claim)")
        email = sub.strip().lower()
    partner = claims.get(PARTNER_CLAIM) or ""
    if not isinstance(partner, str):
        raise Unauthenticated(f"the token's {PARTNER_CLAIM} is not a string")
    return Principal(Kind.PERSON, sub, email=email, partner=partner.strip())


class ServiceToken:
    """A service's own token, minted with the vendor key and renewed before it expires."""

    def __init__(self, issuer: TokenIssuer, service: str, ttl_seconds: float = 3600) -> None:
        self.issuer = issuer
        self.service = service
        self.ttl = ttl_seconds
        self._token = ""
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        now = time.time()
        with self._lock:
            if now >= self._renew_at:
                self._token = self.issuer.service(self.service, ttl_seconds=self.ttl)
                self._renew_at = now + self.ttl / 2
            return self._token
