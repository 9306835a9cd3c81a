"""`python -m services.subscription` runs the subscription service alone."""

from shared.app import clock_from_env, configure_logging, run
from shared.settings import SubscriptionSettings


def main() -> None:
    from services.subscription.app import create

    settings = SubscriptionSettings()
    configure_logging(settings.log_level, settings.log_format)
    run([create(settings, clock_from_env())])


if __name__ == "__main__":
    main()
