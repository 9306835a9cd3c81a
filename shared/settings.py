"""Settings from environment variables, one prefix per service.

Built in each service's `__main__` (never at import time). Every field below is
listed in the README's settings table.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ClockSettings(BaseSettings):
    """`TENURE_CLOCK=test` runs every service on the test clock (operators move it)."""

    model_config = SettingsConfigDict(env_prefix="TENURE_", extra="ignore")

    #: `system`, or `test` for the test clock that operators move with AdvanceClock
    clock: str = "system"
    #: ISO 8601 start of the test clock (default: the real time at start-up)
    clock_start: str | None = None


class AuthSettings(BaseSettings):
    """Tokens: who signs them, who may, and what every token must say (shared by the four services)."""

    model_config = SettingsConfigDict(env_prefix="TENURE_AUTH_", extra="ignore")

    #: issuer (`iss`) every token must carry
    issuer: str = "tenure"
    #: audience (`aud`) every token must carry
    audience: str = "tenure"
    #: folder of the embedded signing key, created on first start when no signing key file is set
    key_dir: str = "var/auth"
    #: PEM private key (Ed25519 or RSA) the services and `python -m services.token` sign with (default: <key_dir>/signing-key.pem)
    signing_key_file: str = ""
    #: PEM public key of another issuer's signing key, trusted beside the signing key
    public_key_file: str = ""
    #: JWKS file of an identity provider's public keys (Keycloak's certs endpoint saved to a file), trusted beside the signing key
    jwks_file: str = ""
    #: lifetime of the tokens a service mints for itself, in seconds
    service_token_ttl_seconds: float = 3600.0


class TlsSettings(BaseSettings):
    """TLS on every server and client; mutual TLS between services when `client_auth` is on."""

    model_config = SettingsConfigDict(env_prefix="TENURE_TLS_", extra="ignore")

    #: PEM certificate chain of this service (empty: plaintext)
    cert_file: str = ""
    #: PEM private key of that certificate
    key_file: str = ""
    #: PEM CA bundle that signs the services' certificates (clients verify servers with it; servers verify clients with it under mutual TLS)
    ca_file: str = ""
    #: require and verify client certificates (mutual TLS); clients then present cert_file/key_file
    client_auth: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file and self.key_file)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    #: host:port the gRPC server listens on
    addr: str
    #: SQLAlchemy URL of the service's own database
    database_url: str
    #: worker threads of the gRPC server
    workers: int = 16
    #: seconds a stopping server lets running calls finish
    grace_seconds: float = 5.0
    #: seconds between outbox relay polls when nothing wakes it
    relay_interval_seconds: float = 0.5
    #: longest back-off between delivery attempts to a subscriber that is down
    relay_max_backoff_seconds: float = 30.0
    #: deadline of calls to other services
    client_timeout_seconds: float = 10.0
    #: log level
    log_level: str = "INFO"
    #: `json` (one JSON object per line) or `text`
    log_format: str = "json"
    #: host:port of the Prometheus metrics endpoint (HTTP `/metrics`; empty turns it off)
    metrics_addr: str = ""
    #: let other processes bind the same gRPC port (SO_REUSEPORT); off, a second copy on the same port fails to start
    reuse_port: bool = False


class SubscriptionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TENURE_SUBSCRIPTION_", extra="ignore")

    addr: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///var/subscription.db"
    metrics_addr: str = "127.0.0.1:9461"
    #: address of the billing service
    billing_addr: str = "127.0.0.1:50052"
    #: address of the entitlement service
    entitlement_addr: str = "127.0.0.1:50053"
    #: address of the notification service
    notification_addr: str = "127.0.0.1:50054"
    #: consumers of subscription events (comma-separated host:port list)
    event_subscribers: str = "127.0.0.1:50053,127.0.0.1:50054"
    #: seconds between background lifecycle sweeps (0 turns the loop off)
    lifecycle_interval_seconds: float = 60.0


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TENURE_BILLING_", extra="ignore")

    addr: str = "127.0.0.1:50052"
    database_url: str = "sqlite:///var/billing.db"
    metrics_addr: str = "127.0.0.1:9462"
    #: consumers of billing events (entitlement learns payers and accounts opened in billing)
    event_subscribers: str = "127.0.0.1:50051,127.0.0.1:50053,127.0.0.1:50054"
    #: payment terms of invoices, in days (net 30)
    payment_terms_days: int = 30
    #: largest PO document accepted, in bytes
    attachment_max_bytes: int = 5 * 1024 * 1024
    #: seconds between background billing sweeps (0 turns the loop off)
    sweep_interval_seconds: float = 60.0
    #: `production` refuses to start while a seller detail below is missing or a development example
    environment: str = "development"
    #: seller's legal name on invoices and credit notes (development example)
    seller_name: str = "Tenure Software AS"
    #: seller's street address on invoices (comma-separated lines, without the country; development example)
    seller_address: str = "Karl Johans gate 1, 0154 Oslo"
    #: seller's country (ISO 3166-1 alpha-2), printed by name in the buyer's language; the tax table's home country
    seller_country_code: str = "NO"
    #: seller's VAT number on invoices, checked in production (development example)
    seller_tax_id: str = "NO 999 999 999 MVA"
    #: seller's company register entry on invoices (a Norwegian AS: Foretaksregisteret)
    seller_register: str = "Foretaksregisteret"
    #: seller's billing e-mail on invoices (development example)
    seller_email: str = "billing@tenure.example"
    #: bank in the payment instructions of invoices (development example)
    seller_bank_name: str = "Tenure Bank"
    #: IBAN in the payment instructions of invoices (development example)
    seller_iban: str = "NO93 8601 1117 947"
    #: BIC in the payment instructions of invoices (development example)
    seller_bic: str = "TENUNO22"


class EntitlementSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TENURE_ENTITLEMENT_", extra="ignore")

    addr: str = "127.0.0.1:50053"
    database_url: str = "sqlite:///var/entitlement.db"
    metrics_addr: str = "127.0.0.1:9463"
    #: consumers of entitlement events (team changes keep every service's view of the teams)
    event_subscribers: str = "127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50054"
    #: seconds a user's cached seats may serve CheckAccess before a reload (a safety net; changes invalidate at once)
    access_cache_ttl_seconds: float = 300.0
    #: seconds between reads of changes made by other processes on the same database
    access_change_poll_seconds: float = 0.5


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TENURE_NOTIFICATION_", extra="ignore")

    addr: str = "127.0.0.1:50054"
    database_url: str = "sqlite:///var/notification.db"
    metrics_addr: str = "127.0.0.1:9464"
    #: address of the entitlement service (buyer and admins)
    entitlement_addr: str = "127.0.0.1:50053"
    #: address of the billing service (payers, invoice PDFs)
    billing_addr: str = "127.0.0.1:50052"
    #: consumers of notification events (none)
    event_subscribers: str = ""
    #: SMTP server; empty writes .eml files under mail_dir instead
    smtp_host: str = ""
    #: SMTP port
    smtp_port: int = 25
    #: none, starttls or ssl
    smtp_tls: str = "none"
    #: SMTP user name (empty: no login)
    smtp_username: str = ""
    #: SMTP password
    smtp_password: str = ""
    #: From address of every e-mail
    mail_from: str = "Tenure <no-reply@tenure.example>"
    #: Reply-To of every e-mail: where a customer's answer goes (empty: no Reply-To)
    mail_reply_to: str = "Tenure Customer Support <support@tenure.example>"
    #: folder of .eml files when no SMTP host is set
    mail_dir: str = "var/mail"
    #: seconds between delivery passes over pending mail
    delivery_interval_seconds: float = 1.0
    #: longest back-off between SMTP attempts for one e-mail
    delivery_max_backoff_seconds: float = 300.0
    #: account portal link shown in e-mails
    portal_url: str = "https://manage.tenure.example"


class EventBusSettings(BaseSettings):
    """Events over NATS JetStream when a URL is set; otherwise each relay pushes to its `event_subscribers` over gRPC."""

    model_config = SettingsConfigDict(env_prefix="TENURE_NATS_", extra="ignore")

    #: NATS server URL(s), comma-separated (empty: the direct gRPC push)
    url: str = ""
    #: JetStream stream that holds every event (one subject per event type and subscription)
    stream: str = "TENURE_EVENTS"
    #: prefix of the stream's subjects
    subject_prefix: str = "tenure.events"


class TelemetrySettings(BaseSettings):
    """Traces: OpenTelemetry spans, exported over OTLP only when an endpoint is set."""

    model_config = SettingsConfigDict(env_prefix="TENURE_OTEL_", extra="ignore")

    #: OTLP/gRPC collector endpoint such as http://127.0.0.1:4317 (empty: spans are made but not exported)
    otlp_endpoint: str = ""
    #: share of traces sampled (0.0 to 1.0)
    sample_ratio: float = 1.0


SETTINGS = {
    "subscription": SubscriptionSettings,
    "billing": BillingSettings,
    "entitlement": EntitlementSettings,
    "notification": NotificationSettings,
}


def subscribers(value: str) -> list[str]:
    return [a.strip() for a in value.split(",") if a.strip()]
