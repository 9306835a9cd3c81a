import pytest

from shared.errors import InvalidInput
from shared.paging import decode_token, encode_token, next_offset_token, offset_page, page_size


def test_sizes_default_to_50_and_stop_at_500():
    assert (page_size(0), page_size(7), page_size(10_000)) == (50, 7, 500)
    with pytest.raises(InvalidInput):
        page_size(-1)


def test_offsets_round_trip_and_the_last_page_has_no_token():
    assert offset_page(20, "") == (0, 20)
    token = next_offset_token(0, 20, more=True)
    assert offset_page(20, token) == (20, 20)
    assert next_offset_token(20, 20, more=False) == ""


def test_keyset_positions_round_trip():
    token = encode_token("2024-06-10T08:00:00+00:00", "ntf_9")
    assert decode_token(token, 2) == ("2024-06-10T08:00:00+00:00", "ntf_9")


@pytest.mark.parametrize("bad", ["12", "not base64!", encode_token(1, 2), encode_token(-5)])
def test_a_token_this_service_did_not_give_is_bad_input(bad):
    with pytest.raises(InvalidInput) as e:
        offset_page(10, bad)
    assert e.value.field_violations == [("page_token", "page_token is not a token from a previous response")]
