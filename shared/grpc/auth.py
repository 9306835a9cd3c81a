"""Authentication and authorization at the gRPC edge: the bearer token becomes a principal, and the
service's permission table decides before any handler runs (see shared/auth/policy.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.auth.policy import Directory, Rule, Target, decide, rule
from shared.auth.principal import Access, Kind, Principal
from shared.auth.tokens import (
    ServiceToken,
    TokenIssuer,
    TokenVerifier,
    ensure_signing_key,
    load_private_key,
    public_key_from_pem,
    public_keys_from_jwks,
)
from shared.errors import Unauthenticated
from shared.settings import AuthSettings, TlsSettings

AUTHORIZATION = "authorization"
#: Set by a service calling another on a person's behalf; honoured (for the audit trail) only on calls
#: whose token is a service token.
ON_BEHALF_OF = "x-tenure-on-behalf-of"
#: RPCs every caller may use without a token: health checking (reflection is a stream, never checked).
PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def signing_key_path(settings: AuthSettings) -> Path:
    return Path(settings.signing_key_file or Path(settings.key_dir) / "signing-key.pem")


@dataclass
class Auth:
    """The process's token machinery: a verifier for incoming calls, and (when the vendor's signing key
    is here) an issuer for the services' own tokens."""

    settings: AuthSettings
    verifier: TokenVerifier
    issuer: TokenIssuer | None
    tls: TlsSettings = field(default_factory=TlsSettings)

    @classmethod
    def from_settings(cls, settings: AuthSettings | None = None, tls: TlsSettings | None = None) -> Auth:
        settings = settings or AuthSettings()
        keys: dict[str, object] = {}
        issuer = None
        path = signing_key_path(settings)
        if not settings.signing_key_file:
            ensure_signing_key(path)  # the embedded default: made on first start
        if path.exists():
            private = load_private_key(path)
            issuer = TokenIssuer(private, settings.issuer, settings.audience)
            keys["signing-key"] = private.public_key()
        if settings.public_key_file:
            keys["public-key"] = public_key_from_pem(settings.public_key_file)
        if settings.jwks_file:
            keys.update(public_keys_from_jwks(settings.jwks_file))
        verifier = TokenVerifier(keys, settings.issuer, settings.audience)
        return cls(settings, verifier, issuer, tls or TlsSettings())

    def service_token(self, service: str) -> ServiceToken:
        if self.issuer is None:
            raise RuntimeError(
                "this service cannot mint its own token: set TENURE_AUTH_SIGNING_KEY_FILE to the vendor's key"
            )
        return ServiceToken(self.issuer, service, self.settings.service_token_ttl_seconds)

    def credentials(self, service: str) -> Callable[[], list[tuple[str, str]]]:
        """A callable giving the metadata of this service's own calls (renewed before expiry); a call
        made while serving a person names them in `x-tenure-on-behalf-of`."""
        token = self.service_token(service)

        def metadata() -> list[tuple[str, str]]:
            from shared.auth.principal import current_principal

            md = [(AUTHORIZATION, f"Bearer {token.token()}")]
            p = current_principal()
            if p is not None:
                who = p.email if p.kind is Kind.PERSON else (p.on_behalf_of or "")
                if who:
                    md.append((ON_BEHALF_OF, who))
            return md

        return metadata

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> Principal | None:
        """The verified principal of a call's metadata, None without a token; Unauthenticated when the
        token is malformed, expired or not signed by a trusted key."""
        auth, behalf = "", ""
        for k, v in metadata or ():
            text = v.decode() if isinstance(v, bytes) else v
            if k == AUTHORIZATION:
                auth = text
            elif k == ON_BEHALF_OF:
                behalf = text
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization metadata must be 'Bearer <token>'")
        principal = self.verifier.verify(token.strip())
        if behalf and principal.kind is Kind.SERVICE:
            return Principal(principal.kind, principal.subject, principal.email, behalf.strip().lower())
        return principal


class _NoTeams:
    """The directory of a service whose RPCs name no account (clock, event sink)."""

    def roles(self, account_id: str, email: str) -> frozenset[str]:
        return frozenset()

    def known(self, account_id: str) -> bool:
        return False


NO_TEAMS = _NoTeams()


@dataclass
class Permissions:
    """One service's permission table: RPC name → rule, the targets its rules name, and the directory
    of account teams that gives a person's roles."""

    service: str  # full proto service name, e.g. tenure.billing.v1.BillingService
    table: dict[str, Rule]
    targets: dict[str, Target] = field(default_factory=dict)
    directory: Directory = NO_TEAMS

    def check(self, method: str, request: Any, principal: Principal | None) -> Access:
        return decide(method, self.table.get(method), principal, request, self.targets, self.directory)


# The services every process serves besides its own.
CLOCK_PERMISSIONS = Permissions(
    "tenure.common.v1.ClockService",
    {
        "GetTime": rule("operator", "service", "person"),
        "SetTime": rule("operator", "service"),
        "DrainOutbox": rule("operator", "service"),
    },
)


def event_sink_permissions() -> Permissions:
    return Permissions(
        "tenure.events.v1.EventSinkService", {"Deliver": rule("service"), "DeliverBatch": rule("service")}
    )
