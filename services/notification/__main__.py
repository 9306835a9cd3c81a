"""`python -m services.notification` runs the notification service alone."""

from shared.app import clock_from_env, configure_logging, run
from shared.settings import NotificationSettings


def main() -> None:
    from services.notification.app import create

    settings = NotificationSettings()
    configure_logging(settings.log_level, settings.log_format)
    run([create(settings, clock_from_env())])


if __name__ == "__main__":
    main()
