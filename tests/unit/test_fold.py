"""The fold is idempotent, order-insensitive and never moves a task backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from read_model.fold import (
    FAILURE,
    PENDING,
    RETRY,
    STARTED,
    SUCCESS,
    TaskRow,
    apply,
    fold,
    requested_variants,
    variant_results,
)
from schemas import (
    ObjectRef,
    ResizeCompleted,
    ResizeFailed,
    ResizeRequested,
    ResizeStarted,
    StoredImage,
    VariantImage,
    VariantSpec,
)
from schemas.events import Event

TASK = "0b8e6f4e-1f0a-4a55-9f49-0a3d5f7e2c11"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def requested(t: float = 0) -> ResizeRequested:
    return ResizeRequested(task_id=TASK, occurred_at=at(t), source=ObjectRef("b", f"originals/{TASK}"), width=10)


def started(attempt: int, t: float) -> ResizeStarted:
    return ResizeStarted(task_id=TASK, occurred_at=at(t), attempt=attempt)


def failed(attempt: int, t: float, retriable: bool) -> ResizeFailed:
    return ResizeFailed(
        task_id=TASK,
        occurred_at=at(t),
        attempt=attempt,
        error_code="store_unavailable",
        error_message="down",
        retriable=retriable,
    )


def completed(attempt: int, t: float) -> ResizeCompleted:
    return ResizeCompleted(
        task_id=TASK,
        occurred_at=at(t),
        attempt=attempt,
        result=StoredImage("b", f"results/{TASK}", "image/jpeg", 10, 10, 99, "etag"),
        source_width=100,
        source_height=100,
        duration_ms=5,
    )


# A full history: two failed attempts, then success on the third.
HISTORY: list[Event] = [
    requested(0),
    started(1, 1),
    failed(1, 2, True),
    started(2, 3),
    failed(2, 4, True),
    started(3, 5),
    completed(3, 6),
]


def test_history_in_order_ends_in_success_with_its_details() -> None:
    row = fold(HISTORY)
    assert row is not None
    assert row.state == SUCCESS
    assert row.attempts == 3
    assert row.created_at == at(0) and row.started_at == at(1) and row.finished_at == at(6)
    assert row.result_key == f"results/{TASK}" and row.result_size == 99
    assert row.error_code is None


def test_each_prefix_gives_the_expected_state() -> None:
    states = [fold(HISTORY[: i + 1]).state for i in range(len(HISTORY))]  # type: ignore[union-attr]
    assert states == [PENDING, STARTED, RETRY, STARTED, RETRY, STARTED, SUCCESS]


def test_final_failure_keeps_the_error() -> None:
    row = fold([requested(), started(1, 1), failed(1, 2, False)])
    assert row is not None and row.state == FAILURE
    assert row.error_code == "store_unavailable" and row.finished_at == at(2)


@given(st.permutations(HISTORY), st.lists(st.sampled_from(HISTORY), max_size=10))
def test_any_order_and_any_duplicates_give_the_same_row(order: list[Event], duplicates: list[Event]) -> None:
    assert fold(order + duplicates) == fold(HISTORY)


@given(st.permutations(HISTORY))
def test_state_never_goes_back(order: list[Event]) -> None:
    rank = {PENDING: 0, STARTED: 1, RETRY: 1, SUCCESS: 2, FAILURE: 2}
    row: TaskRow | None = None
    seen_terminal = False
    for event in order:
        row = apply(row, event)
        if seen_terminal:
            assert row.state == SUCCESS
        seen_terminal = seen_terminal or rank[row.state] == 2


def test_late_request_does_not_reset_a_finished_task() -> None:
    row = fold([completed(1, 5), requested(0)])
    assert row is not None and row.state == SUCCESS and row.width == 10


def test_event_for_another_task_is_refused() -> None:
    other = ResizeStarted(task_id="5f0c7d3e-8a0b-4c6e-9b1f-2a3d4e5f6a7b", attempt=1)
    try:
        apply(fold([requested()]), other)
    except ValueError:
        return
    raise AssertionError("applied an event to the wrong task")


def test_a_replayed_outcome_supersedes_the_old_one() -> None:
    replay: list[Event] = [started(1, 10), completed(1, 11)]
    row = fold(HISTORY + replay[:1])
    assert row is not None and row.state == SUCCESS and row.finished_at == at(6)
    row = fold(HISTORY + replay)
    assert row is not None and row.state == SUCCESS and row.finished_at == at(11)
    assert fold(list(reversed(HISTORY + replay))) == row


def test_retry_then_a_new_attempt_is_started_again() -> None:
    row = fold([requested(), started(1, 1), failed(1, 2, True), started(2, 3)])
    assert row is not None and row.state == STARTED and row.attempts == 2 and row.error_code is None


def test_variants_requested_and_stored_follow_their_events() -> None:
    request = ResizeRequested(
        task_id=TASK,
        occurred_at=at(0),
        source=ObjectRef("b", "k"),
        width=10,
        variants=(VariantSpec("a", 10), VariantSpec("b", None, 20, "fit", "png")),
    )
    images = tuple(
        VariantImage(n, StoredImage("b", f"results/{TASK}/{n}", "image/png", w, w, 9, f"e{n}"))
        for n, w in (("a", 10), ("b", 20))
    )
    first = ResizeCompleted(
        task_id=TASK,
        occurred_at=at(2),
        result=images[0].image,
        source_width=100,
        source_height=100,
        duration_ms=5,
        variants=images,
    )
    row = fold([first, request])
    assert row is not None
    assert [v["name"] for v in requested_variants(row)] == ["a", "b"]
    assert requested_variants(row)[1] == {"name": "b", "width": None, "height": 20, "mode": "fit", "format": "png"}
    assert [(v["name"], v["key"], v["width"]) for v in variant_results(row)] == [
        ("a", f"results/{TASK}/a", 10),
        ("b", f"results/{TASK}/b", 20),
    ]
    # A later final failure (a replay that failed) clears the stored variants with the result.
    after = apply(row, failed(2, 3, retriable=False))
    assert after.state == FAILURE and variant_results(after) == [] and after.result_key is None
    assert requested_variants(after) == requested_variants(row)


def test_an_event_dated_past_its_log_time_and_the_skew_is_folded_at_that_bound() -> None:
    from read_model.fold import bounded_in_time

    logged = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    skew = timedelta(minutes=5)
    far = ResizeFailed(task_id=TASK, occurred_at=datetime(9999, 1, 1, tzinfo=UTC), error_code="x", error_message="y")
    assert bounded_in_time(far, logged, skew).occurred_at == logged + skew
    assert bounded_in_time(far, logged, skew).event_id == far.event_id
    near = ResizeFailed(task_id=TASK, occurred_at=logged + timedelta(minutes=1), error_code="x", error_message="y")
    assert bounded_in_time(near, logged, skew) is near


def test_the_row_shows_the_lane_of_its_request_and_a_copy_in_another_lane_folds_the_same_in_any_order() -> None:
    import itertools

    from read_model.fold import apply

    request = HISTORY[0]
    assert isinstance(request, ResizeRequested)
    rest = HISTORY[1:]
    rows = set()
    for lanes in itertools.permutations(["interactive", "bulk"]):
        row = None
        for lane in lanes:
            row = apply(row, request, lane)
        for event in rest:
            row = apply(row, event)
        rows.add(row)
    assert len(rows) == 1
    assert rows.pop().lane == "bulk"  # of equal events, the first lane by name
    assert apply(None, request, "interactive").lane == "interactive"
    assert apply(None, request).lane is None
