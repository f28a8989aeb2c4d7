"""IMAP batches bounded by bytes (issue 30): a folder of large messages is fetched in
batches whose raw size (by RFC822.SIZE, known before the fetch) stays under
``imap.BATCH_BYTES``, so memory per batch has a ceiling whatever the folder holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sync import imap
from sync.imap import fetch as imap_fetch
from tests.helpers import demo_messages
from tests.sync.conftest import append_all
from tests.sync.test_imap import add_account, store  # noqa: F401 - store is a fixture

SIZES = st.lists(st.integers(1, 3 * imap.MAX_FETCH_BYTES), max_size=60)


def _cost(size: int) -> int:
    big = size > imap.MAX_FETCH_BYTES
    return imap.HEADER_BYTES + imap.PARTIAL_BODY_BYTES if big else size


@given(SIZES, st.integers(1, 20), st.integers(1, 64 * 2**20))
def test_batches_keep_order_and_stay_under_both_bounds(sizes, count, limit):
    pairs = list(enumerate(sizes, start=1))
    batches = list(imap.batches(pairs, count, limit))
    assert [pair for batch in batches for pair in batch] == pairs
    for batch, following in zip(batches, [*batches[1:], None], strict=False):
        assert 1 <= len(batch) <= count
        used = sum(_cost(size) for _, size in batch)
        assert used <= limit or len(batch) == 1  # only a message larger than the limit alone
        if following is not None and len(batch) < count:  # cut only where a bound required
            assert used + _cost(following[0][1]) > limit


def test_a_sync_with_a_small_byte_bound_fetches_in_many_batches_and_keeps_everything(
    store, imap_server, monkeypatch  # noqa: F811 - the fixture imported above
):  # fmt: skip
    messages = demo_messages()
    append_all(imap_server, "Sent", messages)
    add_account(store, imap_server)
    fetched: list[list[tuple[int, int]]] = []
    real_fetch = imap_fetch._fetch

    def recording(client, batch):
        fetched.append(list(batch))
        return real_fetch(client, batch)

    limit = 4 * max(len(raw) for raw in messages)  # a few emails a batch
    monkeypatch.setattr(imap_fetch, "BATCH_BYTES", limit)
    monkeypatch.setattr(imap_fetch, "_fetch", recording)
    report = imap.sync(store, "maya", imap_server.secret)
    assert sum(report.counts.values()) == len(messages)
    sent = [batch for batch in fetched if batch]
    assert len(sent) >= len(messages) // 8  # many batches, not one of 200
    assert all(sum(size for _, size in batch) <= limit for batch in sent)
    assert store.count_messages("maya") == report.counts["kept"]
