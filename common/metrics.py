"""Prometheus metrics of every role, defined once.

The API runs under granian, possibly with several processes: with PROMETHEUS_MULTIPROC_DIR
set, /metrics aggregates all of them. Workers and the projector serve their own
/metrics on METRICS_PORT.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZES = (1e3, 1e4, 1e5, 5e5, 1e6, 5e6, 1e7, 2.5e7)

# API
HTTP_REQUESTS = Counter("imgresize_http_requests_total", "HTTP requests", ["route", "method", "status"])
HTTP_SECONDS = Histogram("imgresize_http_request_seconds", "HTTP request time", ["route"], buckets=LATENCY)
UPLOAD_BYTES = Histogram("imgresize_upload_bytes", "Accepted upload sizes", buckets=SIZES)

# Worker: where the time between a request and its result goes.
QUEUE_WAIT = Histogram("imgresize_queue_wait_seconds", "From request to the start of an attempt", buckets=LATENCY)
DOWNLOAD_SECONDS = Histogram("imgresize_download_seconds", "Fetching the original", buckets=LATENCY)
RESIZE_SECONDS = Histogram("imgresize_resize_seconds", "Decoding, resizing and encoding", buckets=LATENCY)
UPLOAD_SECONDS = Histogram("imgresize_result_upload_seconds", "Storing the result", buckets=LATENCY)
REQUEST_TO_RESULT = Histogram(
    "imgresize_request_to_result_seconds", "From request to the stored result", buckets=LATENCY
)
RESIZE_FAILURES = Counter("imgresize_resize_failures_total", "Failed attempts by error code", ["code"])
RETRIES = Counter("imgresize_retries_total", "Requests sent to the retry topic")
DEAD_LETTERS = Counter("imgresize_dead_letters_total", "Records sent to the dead-letter topic", ["component"])
CONSUMER_LAG = Gauge(
    "imgresize_consumer_lag",
    "Records not yet handled, per partition",
    ["role", "topic", "partition"],
    multiprocess_mode="max",
)
# Lanes, as the workers see them: from a record's arrival in its lane's topic.
LANE_QUEUE_WAIT = Histogram(
    "imgresize_lane_queue_wait_seconds",
    "From a request record's arrival in its lane's topic to the start of its handling",
    ["lane"],
    buckets=LATENCY,
)
LANE_REQUEST_TO_RESULT = Histogram(
    "imgresize_lane_request_to_result_seconds",
    "From a request record's arrival in its lane's topic to its acknowledged outcome",
    ["lane"],
    buckets=LATENCY,
)
LANE_WORK_SECONDS = Counter("imgresize_lane_work_seconds_total", "Worker time spent on each lane's records", ["lane"])
LANE_CONTENDED_SECONDS = Counter(
    "imgresize_lane_contended_work_seconds_total",
    "Worker time spent on each lane's records while another lane also had a record waiting: the time "
    "LANE_MIN_SHARE is a floor of",
    ["lane"],
)
LANE_RECORDS = Counter("imgresize_lane_records_total", "Request and retry records handled, per lane", ["lane"])
LANE_LAG = Gauge(
    "imgresize_lane_lag",
    "Records in a lane's requests and retry topics not yet handled by its group, over this worker's partitions",
    ["lane"],
    multiprocess_mode="max",
)
LANE_ADMISSIONS = Counter(
    "imgresize_lane_admissions_total",
    "Uploads accepted per lane, and why that lane: asked, default, ceiling (asked above it), allowance (over "
    "the first lane's rate)",
    ["lane", "reason"],
)
WEBHOOK_DELIVERIES = Counter(
    "imgresize_webhook_deliveries_total",
    "Webhook POSTs by final outcome: delivered, rejected (4xx), gave_up, refused (policy)",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter("imgresize_webhook_attempts_total", "Webhook POST attempts, retries included")
WEBHOOK_SECONDS = Histogram("imgresize_webhook_seconds", "One webhook POST", buckets=LATENCY)
ERASED_OBJECTS = Counter(
    "imgresize_lifecycle_erased_objects_total", "Objects deleted from the store, by why: deleted, expired", ["reason"]
)
ERASED_BYTES = Counter(
    "imgresize_lifecycle_erased_bytes_total", "Bytes deleted from the store, by why: deleted, expired", ["reason"]
)
EXPIRED_BACKLOG = Gauge(
    "imgresize_lifecycle_expired_backlog_objects", "Expired objects found by the last sweep, not yet deleted"
)
JANITOR_SWEEPS = Counter("imgresize_lifecycle_sweeps_total", "Janitor sweeps of the bucket, by outcome", ["outcome"])
JANITOR_LEASE = Gauge("imgresize_lifecycle_lease", "1 while this janitor holds the sweep lease")
FORGOTTEN_TASKS = Counter(
    "imgresize_view_forgotten_tasks_total", "Task rows dropped from the status view past their status TTL"
)
PROJECTED_EVENTS = Counter("imgresize_projected_events_total", "Events folded into the status view")


def serve(port: int, host: str) -> None:
    """Serve /metrics of this process (worker, projector) when a port is set."""
    if port:
        start_http_server(port, addr=host)


def _registry() -> CollectorRegistry:
    """This process's metrics, or those of all API processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def serve_shared(port: int, host: str) -> bool:
    """Serve the API's metrics on an address of their own; False if another API process already does.

    Any one process can: in multiprocess mode each reads every process's files.
    """
    try:
        start_http_server(port, addr=host, registry=_registry())
    except OSError:
        return False
    return True
