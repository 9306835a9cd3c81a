from __future__ import annotations

import pytest

from tests.service.billing.helpers import Billing


@pytest.fixture
def billing(start_service):
    b = Billing(start_service("billing", sweep_interval_seconds=0))
    yield b
    b.channel.close()
