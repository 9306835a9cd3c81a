"""`python -m services.billing` runs the billing service alone."""

from shared.app import clock_from_env, configure_logging, run
from shared.settings import BillingSettings


def main() -> None:
    from services.billing.app import create

    settings = BillingSettings()
    configure_logging(settings.log_level, settings.log_format)
    run([create(settings, clock_from_env())])


if __name__ == "__main__":
    main()
