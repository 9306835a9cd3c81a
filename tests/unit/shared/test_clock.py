from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import SystemClock, TestClock, make_clock
from shared.errors import InvalidInput, RuleViolation


def test_test_clock_starts_where_told_and_only_moves_forward():
    c = make_clock("test", "2024-06-10T00:00:00+02:00")
    assert c.now() == datetime(2024, 6, 9, 22, 0, tzinfo=UTC)
    assert c.advance(timedelta(days=365)) == datetime(2025, 6, 9, 22, 0, tzinfo=UTC)
    with pytest.raises(InvalidInput):
        c.set(datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidInput):
        c.advance(timedelta(seconds=-1))


def test_system_clock_cannot_be_moved():
    c = SystemClock()
    with pytest.raises(RuleViolation) as e:
        c.advance(timedelta(days=1))
    assert e.value.reason == "TEST_CLOCK_DISABLED"


def test_unknown_clock_kind_is_refused():
    with pytest.raises(InvalidInput):
        make_clock("fast")
    assert isinstance(make_clock("test"), TestClock)
