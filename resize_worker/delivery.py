"""How a handled request's records become durable and its offset committed.

AtLeastOnce: every record acknowledged (acks=all), then the offset stored for
the next auto-commit. A crash in between redelivers; effects are idempotent.

ExactlyOnce: the records and the consumer offset in one Kafka transaction.
Consumers reading with isolation.level=read_committed see each outcome once.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from common.backoff import jittered
from common.errors import BrokerUnavailable
from common.kafka import Headers, coordinates, produce_and_wait
from common.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    topic: str
    key: str
    value: bytes
    headers: Headers | None = None


class Commit(enum.Enum):
    """What became of a handled record."""

    DONE = "done"  # its effects and its offset are settled
    AGAIN = "again"  # rolled back and rewound: the same record comes back from the next poll


class Stopped(Exception):
    """The worker is stopping while a record it produced is not acknowledged: the request is not
    settled, its offset must not be committed, and the next owner of its partition handles it again."""


class Delivery(Protocol):
    def begin(self) -> None: ...

    def send(self, record: Record, durable: bool = True) -> None: ...

    def commit(self, msg: Message, consumer: Consumer) -> Commit: ...


def until_done(
    call: Callable[[], object],
    transient: Callable[[Exception], bool],
    what: str,
    stop: threading.Event,
    first_wait: float,
    log_extra: dict[str, str] | None = None,
    give_up_after: float | None = None,
) -> None:
    """Call until it returns, waiting a jittered, growing time after each transient failure.

    Stopped if told to stop meanwhile: the request is then not settled, and the
    next owner of its partition handles it again. With `give_up_after`, the last
    transient failure is raised once that many seconds have passed.
    """
    attempt = 0
    deadline = None if give_up_after is None else time.monotonic() + give_up_after
    while True:
        try:
            call()
            return
        except Exception as e:
            if not transient(e) or (deadline is not None and time.monotonic() > deadline):
                raise
            attempt += 1
            log.warning("%s: not done yet, trying again: %s", what, e, extra=log_extra)
            if stop.wait(jittered(attempt, first_wait, 5.0)):
                raise Stopped(f"stopping before {what}") from e


def bounded(call: Callable[[], object], seconds: float, what: str) -> None:
    """Run a transactional call, giving it up after `seconds` even if it does not return.

    After its transaction coordinator moved, a producer can stay stuck re-acquiring
    its producer id ("Not coordinator: retrying") with send_offsets_to_transaction
    blocked far past its own timeout, while its consumer cannot rejoin its group.
    Past the bound this raises a fatal error: the worker then starts fresh clients
    (worker.starts_over), whose producer, with the same transactional.id, fences
    the stuck one and aborts its transaction.
    """
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            failure.append(e)
        finally:
            done.set()

    threading.Thread(target=run, name=f"txn-{what}", daemon=True).start()
    if not done.wait(seconds):
        stuck = KafkaError(KafkaError._TIMED_OUT, f"{what} still blocked after {seconds:.0f} s", fatal=True)
        raise KafkaException(stuck)
    if failure:
        raise failure[0]


def _retriable(e: Exception) -> bool:
    """librdkafka's word that a transactional call may be made again (it then resumes where it was)."""
    return isinstance(e, KafkaException) and bool(e.args[0].retriable())


class AtLeastOnce:
    def __init__(self, settings: Settings, producer: Producer, stop: threading.Event) -> None:
        self._settings = settings
        self._producer = producer
        self._stop = stop

    def begin(self) -> None:
        """Nothing to open: each record is acknowledged on its own."""

    def send(self, record: Record, durable: bool = True) -> None:
        """Produce; when durable, wait for the ack, retrying while the broker is away (Stopped if told to stop)."""
        if not durable:
            self._producer.produce(record.topic, key=record.key.encode(), value=record.value, headers=record.headers)
            self._producer.poll(0)
            return
        until_done(
            lambda: produce_and_wait(
                self._producer,
                record.topic,
                record.key,
                record.value,
                self._settings.produce_timeout_seconds,
                headers=record.headers,
            ),
            lambda e: isinstance(e, BrokerUnavailable),
            f"a {record.topic} record acknowledged",
            self._stop,
            first_wait=0.5,
            log_extra={"task_id": record.key},
        )

    def commit(self, msg: Message, consumer: Consumer) -> Commit:
        """Store the offset on the consumer that read `msg` (its lane's), for the next auto-commit."""
        consumer.store_offsets(message=msg)
        return Commit.DONE


class ExactlyOnce:
    def __init__(self, settings: Settings, producer: Producer, stop: threading.Event) -> None:
        self._settings = settings
        self._producer = producer
        self._stop = stop
        self._timeout = settings.produce_timeout_seconds
        self._retrying(lambda: producer.init_transactions(self._timeout), "init_transactions")

    def begin(self) -> None:
        self._producer.begin_transaction()

    def send(self, record: Record, durable: bool = True) -> None:
        self._producer.produce(record.topic, key=record.key.encode(), value=record.value, headers=record.headers)
        self._producer.poll(0)

    def commit(self, msg: Message, consumer: Consumer) -> Commit:
        """Commit records and offset (in the group of `consumer`, the lane's) together; on abort, rewind
        so the request is handled again."""
        topic, partition, offset = coordinates(msg)
        position = [TopicPartition(topic, partition, offset + 1)]
        group = consumer.consumer_group_metadata()
        try:
            # Bounded: offsets of a group that is rebalancing are refused until this very consumer
            # rejoins, which it does only when polled; past the bound the transaction is aborted and
            # the record rewound, so the loop polls and the rebalance can finish.
            self._retrying(
                lambda: self._producer.send_offsets_to_transaction(position, group, self._timeout),
                "send_offsets",
                give_up_after=3 * self._timeout,
            )
            self._retrying(lambda: self._producer.commit_transaction(self._timeout), "commit_transaction")
            return Commit.DONE
        except KafkaException as e:
            error = e.args[0]
            if error.fatal():
                # The producer is unusable (fenced, or the transaction gone): the worker decides (worker.starts_over).
                raise
            log.warning("transaction aborted, will reprocess: %s", error)
            self._retrying(lambda: self._producer.abort_transaction(self._timeout), "abort_transaction")
            consumer.seek(TopicPartition(topic, partition, offset))
            return Commit.AGAIN

    def _retrying(self, call: Callable[[], object], what: str, give_up_after: float | None = None) -> None:
        """A coordinator that moves (its broker died) makes commit and abort time out until the new one
        answers; giving up there would take the worker down with the transaction still open. A call
        that blocks past two of its timeouts is a stuck producer: fatal, see `bounded`."""
        until_done(
            lambda: bounded(call, 2 * self._timeout + 5, what),
            _retriable,
            what,
            self._stop,
            first_wait=0.2,
            give_up_after=give_up_after,
        )
