"""The crash ledger's notes: what a committed offset's metadata says about the record it points at."""

from resize_worker.crashes import crashes, note, starts_in

TASK = "6f1c2c8e-4a55-4a86-9a49-0a4f6a1d9b10"


def test_a_note_reads_back_as_its_count_for_its_own_task() -> None:
    assert starts_in(note(1, TASK), TASK) == 1
    assert starts_in(note(2, TASK), TASK) == 2


def test_no_note_another_tasks_note_or_foreign_metadata_count_nothing() -> None:
    assert starts_in(None, TASK) == 0
    assert starts_in("", TASK) == 0
    assert starts_in(note(3, "another-task"), TASK) == 0
    assert starts_in("set by some other tool", TASK) == 0
    assert starts_in("imgresize-started:x:" + TASK, TASK) == 0


def test_starts_this_living_process_made_are_not_counted_as_deaths() -> None:
    assert crashes(noted=2, own=0) == 2  # two other workers died on it
    assert crashes(noted=2, own=2) == 0  # both were ours, before our Kafka clients were replaced
    assert crashes(noted=3, own=1) == 2
    assert crashes(noted=0, own=1) == 0  # a note lost on the way: never below zero
