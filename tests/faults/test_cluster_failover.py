"""A three-broker cluster loses partition leaders under load: nothing accepted is lost or doubled.

Topics have replication factor 3 and min.insync.replicas 2. During a 300-job run
the leader of a requests-topic partition is killed (-9), then, after it rejoined,
the leader of a results-topic partition; clients go on submitting until both
failovers are over, so there is traffic through each. Jobs are submitted as a careful client
does (retried with their Idempotency-Key on a 503). Run in at-least-once and in
exactly-once mode; the failover time (kill to the next completed job) is printed.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from common.kafka import high_watermarks
from common.settings import Settings
from local_infra.kafka_cluster import KafkaCluster, start_kafka_cluster
from tests.pipeline import Pipeline, jpeg_bytes, submit_until_accepted

pytestmark = [pytest.mark.faults, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[2]
JOBS = 300
CLIENTS = 6


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("kills brokers of its own cluster; a given broker is not ours to kill")
    running = start_kafka_cluster(tmp_path_factory.mktemp("cluster"), ROOT / ".cache", nodes=3)
    yield running
    running.stop()


def _leader(cluster: KafkaCluster, topic: str, partition: int = 0) -> int:
    metadata = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(topic, timeout=10)
    return int(metadata.topics[topic].partitions[partition].leader)


def _in_sync(cluster: KafkaCluster, topics: list[str]) -> bool:
    metadata = AdminClient({"bootstrap.servers": cluster.bootstrap_servers}).list_topics(timeout=10)
    return all(len(p.isrs) == 3 for t in topics for p in metadata.topics[t].partitions.values())


def _successes(view: Path) -> int:
    try:
        with sqlite3.connect(f"file:{view}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT COUNT(*) FROM tasks WHERE state = 'SUCCESS'").fetchone()[0])
    except sqlite3.Error:
        return 0


def _diagnosis(pipeline: Pipeline) -> str:
    """Where the work stands: states in the view, and the log ends against the view's applied offsets."""
    settings = pipeline.settings
    with sqlite3.connect(settings.view_path) as db:
        states = dict(db.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall())
        applied = db.execute("SELECT topic, partition, next_offset FROM applied_offsets").fetchall()
    probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap_servers, "group.id": "diagnosis"})
    try:
        ends = {t: high_watermarks(probe, t) for t in (settings.requests_topic, settings.results_topic)}
    finally:
        probe.close()
    threads = [f"{t.name}:{'alive' if t.is_alive() else 'ended'}" for t in pipeline.threads]
    return f"states {states}; log ends {ends}; applied {applied}; threads alive {threads}; {_worker_group(settings)}"


def _worker_group(settings: Settings) -> str:
    """Who in the worker group holds which partition, and the group's committed offsets (stable ones)."""
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    group = settings.worker_group
    try:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        members = {
            m.member_id[-8:]: sorted(
                f"{tp.topic.split('-')[0]}[{tp.partition}]" for tp in m.assignment.topic_partitions
            )
            for m in description.members
        }
        request = [ConsumerGroupTopicPartitions(group)]
        listed = admin.list_consumer_group_offsets(request, require_stable=True)[group].result(timeout=10)
        committed = {f"{tp.topic.split('-')[0]}[{tp.partition}]": tp.offset for tp in listed.topic_partitions}
    except KafkaException as e:
        return f"worker group unreadable: {e}"
    return f"worker group {description.state}: members {members}; committed {committed}"


def _log_end(cluster: KafkaCluster, topic: str, partition: int = 0) -> int | None:
    """The partition's log-end offset, or None while no leader answers for it."""
    probe = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "failover-probe"})
    try:
        return int(probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=1, cached=False)[1])
    except KafkaException:
        return None
    finally:
        probe.close()


@dataclass
class Failover:
    leader: int
    writable_after: float  # kill -> the partition's log end moved (its new leader acknowledged a write)
    next_done_after: float  # kill -> one more job SUCCESS in the view
    caught_up_after: float  # the killed node's restart -> ISR back to 3 everywhere

    def describe(self, topic: str) -> str:
        return (
            f"leader {self.leader} of {topic.split('-')[0]}[0] killed: partition written again after"
            f" {self.writable_after:.1f}s, next job done after {self.next_done_after:.1f}s;"
            f" ISR back to 3 {self.caught_up_after:.1f}s after its restart"
        )


def _kill_leader_and_time_failover(
    cluster: KafkaCluster, pipeline: Pipeline, topic: str, topics: list[str]
) -> Failover:
    """Kill -9 the partition's leader; time until it is written again and the next job is done; restart it."""
    leader = _leader(cluster, topic)
    node = cluster.node(leader)
    before_end = _log_end(cluster, topic)
    before_done = _successes(pipeline.settings.view_path)
    killed_at = time.monotonic()
    os.kill(node.process.pid, signal.SIGKILL)
    writable = done = None
    try:
        while writable is None or done is None:
            elapsed = time.monotonic() - killed_at
            assert elapsed < 90, f"90 s after the kill: written again {writable}, a job done {done}"
            if writable is None and (_log_end(cluster, topic) or -1) > (before_end or 0):
                writable = elapsed
            if done is None and _successes(pipeline.settings.view_path) > before_done:
                done = elapsed
            time.sleep(0.05)
    finally:
        # Restarted whatever happened: a failed wait must not leave the cluster a node short.
        node.restart()
    restarted_at = time.monotonic()
    while not _in_sync(cluster, topics):
        assert time.monotonic() - restarted_at < 120, "the restarted broker did not catch up in 120 s"
        time.sleep(0.5)
    assert writable is not None and done is not None
    return Failover(leader, writable, done, time.monotonic() - restarted_at)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_leader_failover_loses_and_doubles_nothing(
    cluster: KafkaCluster, pipeline_factory: Callable[..., Pipeline], guarantee: str
) -> None:
    pipeline = pipeline_factory(
        workers=2,
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
        processing_guarantee=guarantee,
    )
    settings = pipeline.settings
    topics = [settings.requests_topic, settings.results_topic]
    image = jpeg_bytes(320, 240)
    accepted: list[str] = []
    lock = threading.Lock()
    report: list[str] = []
    kills_done = threading.Event()

    def chaos() -> None:
        """Kill a requests leader once a third of the jobs are in, then a results leader at two thirds.

        One broker is down at a time: the second kill waits until the first node is back in
        every ISR. Two nodes down at once would lose the controller quorum (2 of 3) and
        min.insync.replicas, which this configuration does not claim to ride out without a pause.
        """
        try:
            for share, topic in ((1, settings.requests_topic), (2, settings.results_topic)):
                while len(accepted) < share * JOBS // 3:
                    time.sleep(0.05)
                report.append(_kill_leader_and_time_failover(cluster, pipeline, topic, topics).describe(topic))
        finally:
            kills_done.set()

    def client(number: int) -> None:
        """Submit jobs until JOBS are in and both failovers are over: there is traffic through both."""
        turn = number
        while len(accepted) < JOBS or not kills_done.is_set():
            task_id, _ = submit_until_accepted(pipeline.base_url, image, turn, 48)
            with lock:
                accepted.append(task_id)
            turn += CLIENTS
            if len(accepted) >= JOBS:
                # Past JOBS, a trickle (4 jobs/s from all clients) is traffic enough while a failover
                # finishes; faster, it only grows a backlog to drain after the kills.
                time.sleep(CLIENTS / 4)

    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        futures = [pool.submit(chaos)] + [pool.submit(client, n) for n in range(1, CLIENTS + 1)]
        for future in futures:
            future.result()
    jobs = len(accepted)
    deadline = time.monotonic() + 120
    while _successes(settings.view_path) < jobs:
        assert time.monotonic() < deadline, f"{_successes(settings.view_path)} of {jobs} done; {_diagnosis(pipeline)}"
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    with sqlite3.connect(settings.view_path) as db:
        rows = db.execute("SELECT task_id, state FROM tasks").fetchall()
    print(f"\n[cluster] {guarantee}: {jobs} jobs in {elapsed:.1f}s ({jobs / elapsed:.1f}/s); " + "; ".join(report))
    assert len(accepted) == len(set(accepted)) >= JOBS
    assert {task_id for task_id, _ in rows} == set(accepted)  # one row per job: none lost, none doubled
    assert {state for _, state in rows} == {"SUCCESS"}
