"""`python -m services` runs all four services in one process (the embedded default):
subscription 50051, billing 50052, entitlement 50053, notification 50054, SQLite under ./var/.
With the test clock (TENURE_CLOCK=test) they share one clock object."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from shared.app import clock_from_env, configure_logging, run
from shared.settings import (
    BillingSettings,
    EntitlementSettings,
    NotificationSettings,
    ServiceSettings,
    SubscriptionSettings,
    TlsSettings,
)


def _local(addr: str) -> str:
    """The address to call a server on from this machine (a wildcard host means every interface)."""
    host, port = addr.rsplit(":", 1)
    return f"localhost:{port}" if host in {"0.0.0.0", "[::]", "::", ""} else addr


def banner(settings: Mapping[str, ServiceSettings], tls: TlsSettings | None = None) -> str:
    """What `make run` prints first: where each service listens and the exact commands to call them."""
    bin_dir = Path(sys.executable).parent
    transport = "-cacert <ca.pem>" if tls is not None and tls.enabled else "-plaintext"
    sub = _local(settings["subscription"].addr)
    lines = ["Tenure is starting:"]
    for name, s in settings.items():
        metrics = f", metrics http://{_local(s.metrics_addr)}/metrics" if s.metrics_addr else ""
        lines.append(f"  {name:<13} {_local(s.addr)}{metrics}")
    lines += [
        "Call it with grpcurl (every call but health and reflection needs a token):",
        f'  export PATH="{bin_dir}:$PATH"   # grpcurl and python of the project',
        '  OPS="authorization: Bearer $(python -m services.token --operator)"',
        '  ADA="authorization: Bearer $(python -m services.token --email ada@example.com)"',
        f"  grpcurl {transport} {sub} list",
        f'  grpcurl {transport} -H "$OPS" -emit-defaults {sub} tenure.subscription.v1.SubscriptionService/RunLifecycle',
        "More in README.md, Operating.",
    ]
    return "\n".join(lines)


def main() -> None:
    from services.billing.app import create as billing
    from services.entitlement.app import create as entitlement
    from services.notification.app import create as notification
    from services.subscription.app import create as subscription

    clock = clock_from_env()
    settings = SubscriptionSettings()
    configure_logging(settings.log_level, settings.log_format)
    bs, es, ns = BillingSettings(), EntitlementSettings(), NotificationSettings()
    all_settings = {"subscription": settings, "billing": bs, "entitlement": es, "notification": ns}
    print(banner(all_settings, TlsSettings()), file=sys.stderr, flush=True)
    if not os.access(Path(sys.executable).parent / "grpcurl", os.X_OK):
        print("(grpcurl is not installed in this environment: make run installs it)", file=sys.stderr)
    run(
        [
            billing(bs, clock),
            entitlement(es, clock),
            notification(ns, clock),
            subscription(settings, clock),
        ]
    )


if __name__ == "__main__":
    main()
