"""`python -m services` runs all four services in one process (the embedded default):
subscription 50051, billing 50052, entitlement 50053, notification 50054, SQLite under ./var/.
With the test clock (TENURE_CLOCK=test) they share one clock object."""

import logging

from shared.app import clock_from_env, configure_logging, run
from shared.settings import BillingSettings, EntitlementSettings, NotificationSettings, SubscriptionSettings


def main() -> None:
    from services.billing.app import create as billing
    from services.entitlement.app import create as entitlement
    from services.notification.app import create as notification
    from services.subscription.app import create as subscription

    clock = clock_from_env()
    settings = SubscriptionSettings()
    configure_logging(settings.log_level)
    logging.getLogger("tenure").info(
        "every call needs a token: python -m services.token --email ada@example.com "
        "(a person) or --operator; send it as 'authorization: Bearer <token>'"
    )
    run(
        [
            billing(BillingSettings(), clock),
            entitlement(EntitlementSettings(), clock),
            notification(NotificationSettings(), clock),
            subscription(settings, clock),
        ]
    )


if __name__ == "__main__":
    main()
