"""One typed, frozen settings object per process, read from the environment in one place."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.lanes import Lane, lane_names, per_lane, plan_lanes
from common.retention import Retention
from schemas import DEAD_LETTER_TOPIC, REQUESTS_TOPIC, RESULTS_TOPIC, RETRY_TOPIC


def endpoint_host(endpoint: str) -> str:
    """host:port of an S3 endpoint given with or without its scheme, as the minio client wants it."""
    return endpoint.removeprefix("http://").removeprefix("https://")


def comma_separated(listed: str, normal: Callable[[str], str] = str) -> list[str]:
    """The entries of a comma-separated setting, stripped, empty ones left out."""
    return [normal(entry.strip()) for entry in listed.split(",") if entry.strip()]


class Settings(BaseSettings):
    """Every knob of every role. Environment variables use the upper-case field name."""

    # Each field's docstring is its description: the configuration reference is generated from them.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", use_attribute_docstrings=True)

    # Infrastructure (the same names local_infra and docker-compose use).
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka brokers, host:port, comma-separated."""
    s3_endpoint: str = "127.0.0.1:8333"
    """The object store's S3 endpoint, host:port or a URL (https:// turns TLS on)."""
    s3_access_key: str = "imgresize"
    """Access key id of the service's S3 credentials."""
    s3_secret_key: SecretStr = SecretStr("imgresize-local-secret")
    """Secret key of the service's S3 credentials."""
    s3_bucket: str = "images"
    """The bucket for originals (originals/, incoming/) and results (results/); made at start if missing."""
    s3_secure: bool = False
    """Speak TLS to S3_ENDPOINT."""
    s3_region: str = "us-east-1"
    """The S3 region, also used to sign presigned URLs without asking the store."""
    s3_public_endpoint: str = ""
    """Where clients reach the object store, for presigned redirects (?redirect=1), e.g.
    https://images.example.com. Empty: S3_ENDPOINT, which is usually an internal address.
    """
    s3_presign_access_key: str = ""
    """Credentials that sign presigned URLs, whose access key id the URL shows to clients: give a key that may
    only read the bucket. Empty: the service's own (S3_ACCESS_KEY).
    """
    s3_presign_secret_key: SecretStr = SecretStr("")
    """Secret key of S3_PRESIGN_ACCESS_KEY."""

    # The event contract's topics.
    requests_topic: str = REQUESTS_TOPIC
    """The first lane's requests topic (other lanes add their name as a suffix)."""
    results_topic: str = RESULTS_TOPIC
    """Outcomes (started, completed, failed) and deletions of every lane."""
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    """Records no role could use, byte for byte, with the reason in headers."""
    retry_topic: str = RETRY_TOPIC
    """The first lane's retry topic: requests waiting for another attempt."""
    topic_partitions: int = 6
    """Partitions of the topics `imgresize topics` creates (a lane's: LANE_PARTITIONS)."""
    topic_replication_factor: int = 1
    """Replicas of each topic `imgresize topics` creates (3 on a three-broker cluster)."""
    topic_min_insync_replicas: int = 1
    """With 3 replicas, 2: an acks=all write is on two brokers before it is acknowledged."""
    topic_retention_ms: int = 40 * 24 * 3600 * 1000
    """Requests and results are kept long enough to replay and to rebuild views: at least as long as the view
    promises to answer for a task (the longer of the TTLs below, plus STATUS_TTL_SECONDS); -1: for ever.
    Checked at start.
    """

    lanes: str = "interactive,bulk"
    """Lanes, highest priority first. The first keeps REQUESTS_TOPIC, RETRY_TOPIC and WORKER_GROUP as they are;
    every other lane suffixes them with its name (image.resize.requested.bulk).
    """
    lane_partitions: str = ""
    """Per lane, `lane=n` entries: partitions and retention of its two topics (others: the TOPIC_* values)."""
    lane_retention_ms: str = ""
    """Per lane, `lane=ms` entries: the retention of its requests and retry topics (others:
    TOPIC_RETENTION_MS).
    """
    lane_min_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    """While a worker has work of several lanes in hand, each lane below the first gets at least this share of
    its time, so a flood of interactive uploads slows bulk work down but never stops it.
    """
    lower_lane_nice: int = Field(default=10, ge=0, le=19)
    """Niceness of the resize children serving lanes below the first: on a busy machine the OS gives their CPU
    to interactive resizes, the API, the store and the broker first. 0: no difference.
    """
    worker_lanes: str = ""
    """The lanes a worker serves (comma-separated); empty: all. `resize-worker --lanes bulk`."""
    replay_lane: str = ""
    """Where `imgresize replay` and `imgresize dlq republish` send requests; empty: the last lane."""

    # Ingress.
    api_keys: str = ""
    """API keys as `name:sha256-hex-of-key` entries, comma-separated; see `imgresize apikey`."""
    auth_required: bool = False
    """Off by default for a local stack; docker-compose turns it on."""
    rate_limit_per_second: float = 50.0
    """Token buckets per API key (per client address when auth is off), per API process: submissions, and reads
    (status, results) in a budget of their own.
    """
    rate_limit_burst: int = 100
    """Submissions a key may send at once before RATE_LIMIT_PER_SECOND applies."""
    read_rate_limit_per_second: float = 1000.0
    """Status and result reads per second per API key (per client address without one), per API process."""
    read_rate_limit_burst: int = 2000
    """Reads a key may make at once before READ_RATE_LIMIT_PER_SECOND applies."""
    idempotency_secret: SecretStr = SecretStr("")
    """Key of the HMAC that turns (API key, Idempotency-Key) into a task id; set it in production (the same on
    every API replica), or ids of idempotent requests can be computed offline.
    """
    key_lanes: str = ""
    """Lanes per API key, `name:default` or `name:default:ceiling` entries: the lane a key's uploads take when
    they name none, and the highest lane they may use (asking for more gives the ceiling). Keys not listed:
    the first lane, and any lane.
    """
    interactive_rate_per_second: float = Field(default=10.0, gt=0)
    """Uploads per second (and burst) a key may send to the first lane, per API process; beyond that they are
    served in the second lane, so a script cannot pass bulk work off as interactive.
    """
    interactive_burst: int = Field(default=50, ge=1)
    """First-lane uploads a key may send at once before INTERACTIVE_RATE_PER_SECOND applies."""
    max_backlog_per_key: int = Field(default=10_000, ge=0)
    """Tasks of one key waiting or running in the lanes below the first; beyond it, 429 backlog_full. Uploads
    to the first lane are never refused for a backlog. 0: no bound.
    """
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)
    """Proxies in front of the API that set X-Forwarded-For (`make up`'s edge: 1). The client's address is then
    the one the nearest of them saw; 0: the peer's own address, and the header ignored.
    """
    cors_allowed_origins: str = "*"
    """Origins whose pages may call the API from a browser (CORS), comma-separated, e.g.
    https://app.example.com; `*`: any origin (the replaced service's behaviour; safe because credentials
    are headers, never cookies); empty: no CORS headers, the same origin only."""
    cors_max_age_seconds: int = Field(default=600, ge=0, le=86_400)
    """How long a browser may keep a preflight's answer (Chromium keeps it at most 2 hours)."""
    auth_failure_rate_per_second: float = 1.0
    """Failed authentications per client address before 429s instead of 401s."""
    auth_failure_burst: int = 20
    """Failed authentications per client address at once before AUTH_FAILURE_RATE_PER_SECOND applies."""
    max_long_polls: int = 16
    """Requests waiting at once (?wait=N), per API process and per client; over either, the answer is
    immediate.
    """
    max_long_polls_per_client: int = 8
    """Requests of one client waiting at once (?wait=N), per API process; over it, the answer is immediate."""
    allowed_input_formats: str = "JPEG,PNG,GIF,WEBP,TIFF,BMP"
    """Image formats accepted as originals (Pillow names, comma-separated); others: 422 unsupported_format."""
    max_status_wait_seconds: float = 30.0
    """The longest ?wait=N a status, result or submit request may ask for."""
    readiness_max_lag: int = 1000
    """/readyz fails while this host's view is more requests than this behind the log."""
    max_upload_bytes: int = 25 * 1024 * 1024
    """Largest upload body; larger: 413 payload_too_large before it is read."""
    max_pixels: int = 50_000_000
    """Largest original, in pixels per frame, checked before decoding (decompression bombs)."""
    max_frames: int = 300
    """Most frames an animated original may have."""
    max_dimension: int = 10_000
    """Largest width or height a request may ask for."""
    max_variants: int = 10
    """Most outputs (sizes or variants) one request may ask for."""
    produce_timeout_seconds: float = 10.0
    """How long the API and the workers wait for Kafka to acknowledge an event before giving up (503, or a
    retry).
    """
    view_catch_up_seconds: float = 3.0
    """How long a status request waits for this host's view to catch up with the log before it may answer 404
    for an id it has not seen.
    """

    # Worker.
    worker_group: str = "resize-workers"
    """The first lane's worker consumer group (other lanes add their name as a suffix)."""
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    """at_least_once (default, idempotent effects) or exactly_once (Kafka transactions)."""
    worker_id: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    """Stable per worker slot: with exactly_once, a restarted slot fences its predecessor."""
    max_attempts: int = 5
    """Attempts at a task with transient failures before it fails for good and is dead-lettered."""
    started_event_after_seconds: float = 0.25
    """ResizeStarted is sent for an attempt still running after this long (0: for every attempt). Faster
    attempts show their start in the outcome; the broker is spared a record per task.
    """
    retry_backoff_seconds: float = 0.5
    """The first retry's backoff; it doubles per attempt, with full jitter."""
    retry_backoff_max_seconds: float = 10.0
    """The longest backoff between two attempts."""
    resize_memory_limit_mb: int = 1536
    """The resize runs in a child process with these limits (address space a resize may add to the child's
    own, wall clock); a task over either fails with resource_limit and the worker goes on. 0 MiB: no memory
    limit.
    """
    resize_time_limit_seconds: float = 60.0
    """Wall-clock limit of one resize in its child process; over it: resource_limit."""
    worker_crash_limit: int = Field(default=2, ge=0)
    """A request whose attempts took this many worker processes down with them (started, never finished) is
    dead-lettered with worker_crashed instead of tried again. 0: never.
    """
    allowed_sources: str = ""
    """Where originals may be read from, as bucket/prefix entries (comma-separated). Empty: the service's
    bucket under incoming/ (for producers writing straight to Kafka) and originals/<task id> (the API's
    uploads; a request may name only its own).
    """
    max_output_pixels: int = 100_000_000
    """Output pixels over all of a task's variants and frames, checked before decoding."""
    auto_quality_target: float = Field(default=0.97, gt=0, lt=1)
    """quality=auto: the SSIM (luma, against the unencoded resize) the chosen quality must meet. 0.97 keeps
    photos looking as they do at a fixed quality 85 for a fifth fewer bytes or more (docs/engine.md).
    """
    auto_quality_min: int = Field(default=30, ge=1, le=100)
    """quality=auto never goes below this quality."""
    auto_quality_max: int = Field(default=95, ge=1, le=100)
    """quality=auto never goes above this quality (a picture that meets the target at no quality gets it)."""
    auto_quality_max_encodes: int = Field(default=4, ge=1, le=10)
    """quality=auto tries at most this many qualities per output."""

    # Webhooks: signed outcome POSTs to a request's callback_url.
    webhook_secret: SecretStr = SecretStr("")
    """HMAC-SHA256 key of the X-Imgresize-Signature header, for tasks whose API key has no secret of its own;
    callbacks are refused for a task that would have no secret at all.
    """
    webhook_secrets: SecretStr = SecretStr("")
    """Per API key: `name:secret` entries, comma-separated (made by `imgresize apikey`); a name listed twice
    signs with both secrets while one replaces the other.
    """
    webhook_allow_private: bool = False
    """Private, loopback, link-local and reserved addresses are refused unless this is on."""
    webhook_allowed_hosts: str = ""
    """Hosts allowed even when private (comma-separated), e.g. an internal receiver."""
    webhook_group: str = "webhook-notifiers"
    """The webhook notifiers' consumer group on the results topic."""
    webhook_timeout_seconds: float = 5.0
    """Timeout of one webhook POST (connect and read)."""
    webhook_max_attempts: int = 6
    """Attempts at one webhook before it is dead-lettered."""
    webhook_backoff_seconds: float = 1.0
    """The first webhook retry's backoff; it doubles per attempt, with jitter."""
    webhook_backoff_max_seconds: float = 60.0
    """The longest backoff between two webhook attempts."""
    webhook_concurrency: int = 8
    """Attempts at once (threads); webhooks waiting for a retry hold no thread."""
    webhook_host_concurrency: int = 2
    """Attempts at once to any one host, so slow receivers cannot starve the others."""
    webhook_max_pending: int = 10_000
    """Reading pauses while this many webhooks are unsettled."""
    webhook_fetch_wait_ms: int = Field(default=250, ge=0, le=5000)
    """How long the notifier lets outcomes gather before the broker answers its fetch (0: each at once).
    Webhooks go out up to this much later; the broker serves one fetch per interval instead of one per
    outcome.
    """
    public_base_url: str = ""
    """Prefix of the URLs in webhook bodies, e.g. https://images.example.com; empty: paths only."""

    # Events.
    event_encoding: Literal["single_object", "registry"] = "single_object"
    """How producers here write events: Avro single-object encoding, or Confluent's schema-registry wire
    format (for Kafka Connect, ksqlDB, Flink, Kafka UIs). Readers take both, by the first byte."""
    schema_registry_url: str = ""
    """A Confluent-compatible schema registry (e.g. Apicurio's /apis/ccompat/v7); needed to write or read
    the registry encoding. Schemas are registered by `imgresize topics`."""
    event_clock_skew_seconds: float = Field(default=300.0, ge=0)
    """How far in the future (by its record's log time) an event may date itself; later claims are folded as
    this far ahead, so a forged far-future outcome cannot win a task's fold for ever.
    """
    # Lifecycle.
    result_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=0)
    """Results and variants are kept this long after they are written; then the status and result routes answer
    410 expired and the bytes leave the store. 0: kept for ever.
    """
    original_ttl_seconds: int | None = Field(default=None, ge=0)
    """Originals (originals/ and incoming/), from their upload; a replay needs them. Unset: RESULT_TTL_SECONDS."""
    status_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    """How long the status of an expired or deleted task still answers 410 (expired, deleted) before the view
    forgets it and answers 404, as for an id it never knew.
    """
    lifecycle_sweep: Literal["auto", "always", "never"] = "auto"
    """How often the janitor lists the bucket for expired objects, and whether it does: `auto` sweeps unless
    the store took lifecycle rules that express every TTL (whole days), `always`, `never`.
    """
    lifecycle_rules: bool = True
    """Offer the store expiration rules for the TTLs that are whole days (MinIO, AWS S3, SeaweedFS take them;
    versitygw answers 501). Rules named imgresize-* are replaced; the bucket's others are kept.
    """
    lifecycle_sweep_seconds: float = Field(default=3600.0, gt=0)
    """How often the janitor holding the sweep lease lists the bucket for expired objects."""
    lifecycle_grace_seconds: float = Field(default=60.0, ge=0)
    """A sweep deletes an object this long after its TTL, never before: a result is written a little before the
    outcome whose time starts the TTL the status shows, and listings count whole seconds.
    """
    lifecycle_delete_rate: float = Field(default=500.0, gt=0)
    """Objects deleted per second at most by the janitor, so a large expiry does not crowd out the store's live
    traffic; deletes go in batches of up to LIFECYCLE_BATCH (S3 DeleteObjects: 1,000).
    """
    lifecycle_batch: int = Field(default=500, ge=1, le=1000)
    """Objects per DeleteObjects request of a sweep (S3 allows 1,000)."""
    lifecycle_delete_recheck_seconds: float = Field(default=120.0, ge=0)
    """A deleted task's keys are swept again this long after its deletion, by the janitor: a resize that read
    the original just before the deletion writes its result at most this much later.
    """
    lifecycle_group: str = "imgresize-janitor"
    """The janitors' consumer group on the results topic; its holder of partition 0 sweeps."""

    # Status view.
    view_path: Path = Path("var/status.sqlite3")
    """This host's SQLite status view (written by its projector, read by its API processes)."""
    view_purge_seconds: float = Field(default=60.0, gt=0)
    """How often the projector drops the rows of tasks past their status TTL."""
    partition_check_seconds: float = 30.0
    """How often the projector looks for partitions added to the topics since it started."""

    # Metrics and logs.
    metrics_port: int = 0
    """Prometheus metrics of a worker or projector process on this port (0: none)."""
    metrics_host: str = "127.0.0.1"
    """The address METRICS_PORT listens on."""
    api_metrics_port: int = 0
    """The API's metrics on an address of their own (e.g. an internal interface) instead of /metrics on the
    public port, which then answers 404. 0: on the public port, as /metrics.
    """
    api_metrics_host: str = "127.0.0.1"
    """The address API_METRICS_PORT listens on."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Log level of every role."""
    log_format: Literal["text", "json"] = "text"
    """`text` for people, `json` (one object per line) for log pipelines."""

    def as_env(self) -> dict[str, str]:
        """The environment that gives another process exactly these settings (secrets included)."""
        values = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue  # unset: the child takes the same default
            shown = value.get_secret_value() if isinstance(value, SecretStr) else value
            values[name.upper()] = str(shown)
        return values

    @model_validator(mode="after")
    def _lanes_agree(self) -> Settings:
        """Lane settings that name unknown lanes, or shares that add up to the whole worker, fail at start."""
        plan = self.lane_plan
        known = {lane.name for lane in plan}
        for setting, value in (("WORKER_LANES", self.worker_lanes), ("REPLAY_LANE", self.replay_lane)):
            unknown = set(comma_separated(value)) - known
            if unknown:
                raise ValueError(f"{setting} names lanes not in LANES: {sorted(unknown)}")
        if self.lane_min_share * (len(plan) - 1) >= 1.0:
            raise ValueError("LANE_MIN_SHARE times the lanes below the first must stay under 1")
        return self

    @model_validator(mode="after")
    def _auto_quality_bounds(self) -> Settings:
        if self.auto_quality_min > self.auto_quality_max:
            raise ValueError("AUTO_QUALITY_MIN must not be over AUTO_QUALITY_MAX")
        return self

    @model_validator(mode="after")
    def _registry_named(self) -> Settings:
        if self.event_encoding == "registry" and not self.schema_registry_url:
            raise ValueError("EVENT_ENCODING=registry needs SCHEMA_REGISTRY_URL")
        return self

    @model_validator(mode="after")
    def _topics_outlive_the_view(self) -> Settings:
        """A rebuild from the topics answers as the view did: no topic forgets a task before the view does."""
        promised = self.retention.promised_ms
        kept = {lane.requests_topic: lane.retention_ms for lane in self.lane_plan}
        kept[self.results_topic] = self.topic_retention_ms
        for topic, retention in kept.items():
            if retention == -1:
                continue
            if promised is None or retention < promised:
                needed = "-1 (for ever), as RESULT_TTL_SECONDS is 0" if promised is None else f"at least {promised}"
                raise ValueError(
                    f"{topic} keeps events {retention} ms, but the view answers for a task longer: its retention "
                    f"(TOPIC_RETENTION_MS, LANE_RETENTION_MS) must be {needed}"
                )
        return self

    @functools.cached_property
    def retention(self) -> Retention:
        """The TTLs of results, originals and statuses."""
        original = self.result_ttl_seconds if self.original_ttl_seconds is None else self.original_ttl_seconds
        return Retention.of_seconds(
            self.result_ttl_seconds, original, self.status_ttl_seconds, self.lifecycle_grace_seconds
        )

    # Comma-separated settings, parsed once per process.

    @functools.cached_property
    def lane_plan(self) -> tuple[Lane, ...]:
        """Every lane, highest priority first, with its topics, group, partitions and retention."""
        names = lane_names(self.lanes)
        return plan_lanes(
            names,
            self.requests_topic,
            self.retry_topic,
            self.worker_group,
            self.topic_partitions,
            self.topic_retention_ms,
            per_lane(self.lane_partitions, names, "LANE_PARTITIONS"),
            per_lane(self.lane_retention_ms, names, "LANE_RETENTION_MS"),
        )

    def lane(self, name: str) -> Lane:
        """The lane of that name; KeyError if LANES has none."""
        for lane in self.lane_plan:
            if lane.name == name:
                return lane
        raise KeyError(name)

    def lane_of_topic(self, topic: str) -> Lane | None:
        """The lane whose requests or retry topic this is."""
        for lane in self.lane_plan:
            if topic in (lane.requests_topic, lane.retry_topic):
                return lane
        return None

    @property
    def served_lanes(self) -> tuple[Lane, ...]:
        """The lanes this worker serves (WORKER_LANES), highest priority first."""
        wanted = set(comma_separated(self.worker_lanes))
        return tuple(lane for lane in self.lane_plan if not wanted or lane.name in wanted)

    @property
    def replay_target(self) -> Lane:
        """Where replays and republished dead letters go: REPLAY_LANE, else the last lane."""
        return self.lane(self.replay_lane) if self.replay_lane else self.lane_plan[-1]

    @functools.cached_property
    def input_formats(self) -> frozenset[str]:
        """ALLOWED_INPUT_FORMATS as Pillow format names."""
        return frozenset(comma_separated(self.allowed_input_formats, str.upper))

    @functools.cached_property
    def source_entries(self) -> tuple[str, ...]:
        """ALLOWED_SOURCES as bucket/prefix entries; by default the service's bucket under incoming/."""
        return tuple(comma_separated(self.allowed_sources)) or (f"{self.s3_bucket}/incoming/",)

    @functools.cached_property
    def callback_hosts(self) -> frozenset[str]:
        """WEBHOOK_ALLOWED_HOSTS, lower-cased."""
        return frozenset(comma_separated(self.webhook_allowed_hosts, str.lower))

    @property
    def s3_endpoint_host(self) -> str:
        """host:port as the minio client wants it, whatever scheme the setting carries."""
        return endpoint_host(self.s3_endpoint)

    @property
    def s3_endpoint_secure(self) -> bool:
        return self.s3_secure or self.s3_endpoint.startswith("https://")


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (used by tests and CLIs)."""
    return Settings(**overrides)  # type: ignore[arg-type]
