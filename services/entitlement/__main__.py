"""`python -m services.entitlement` runs the entitlement service alone."""

from shared.app import clock_from_env, configure_logging, run
from shared.settings import EntitlementSettings


def main() -> None:
    from services.entitlement.app import create

    settings = EntitlementSettings()
    configure_logging(settings.log_level, settings.log_format)
    run([create(settings, clock_from_env())])


if __name__ == "__main__":
    main()
