"""Offsets commit up to the first unsettled webhook, whatever order webhooks settle in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from webhook_notifier.progress import OffsetTracker

TP = ("results", 0)


def test_commits_stop_at_the_lowest_unsettled_record() -> None:
    tracker = OffsetTracker()
    tracker.seen(TP, 10, settled=True)
    tracker.seen(TP, 11, settled=False)
    tracker.seen(TP, 12, settled=False)
    tracker.seen(TP, 13, settled=True)
    assert tracker.committable() == {TP: 11}
    tracker.settle(TP, 12)  # settles out of order: still held at 11
    assert tracker.committable() == {}
    tracker.settle(TP, 11)
    assert tracker.committable() == {TP: 14}
    assert tracker.unsettled == 0


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    tracker = OffsetTracker()
    other = ("results", 1)
    tracker.seen(TP, 0, settled=False)
    tracker.seen(other, 5, settled=True)
    assert tracker.committable() == {TP: 0, other: 6}
    tracker.forget([TP])
    assert not tracker.is_tracked(TP, 0) and tracker.unsettled == 0
    tracker.seen(other, 6, settled=True)
    assert tracker.committable() == {other: 7}


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_committed_offset_never_passes_an_unsettled_record(needs_webhook: list[bool], rng: object) -> None:
    tracker = OffsetTracker()
    for offset, needs in enumerate(needs_webhook):
        tracker.seen(TP, offset, settled=not needs)
    open_offsets = [o for o, needs in enumerate(needs_webhook) if needs]
    rng.shuffle(open_offsets)  # type: ignore[attr-defined]
    committed = tracker.committable().get(TP, 0)
    while open_offsets:
        assert committed <= min(open_offsets)
        tracker.settle(TP, open_offsets.pop())
        committed = tracker.committable().get(TP, committed)
    assert committed == len(needs_webhook)
