"""The object store (any S3 API: MinIO, SeaweedFS, AWS S3) behind a small domain interface."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, Filter
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from minio.helpers import normalize_headers
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from common.errors import ObjectExists, ObjectNotFound, StoreUnavailable
from common.retention import Listed
from common.settings import Settings, endpoint_host

_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}
# The lifecycle rules this service sets on its bucket are named so; others are left alone.
_RULE_PREFIX = "imgresize-"


@dataclass(frozen=True)
class StoredObject:
    data: bytes
    content_type: str
    etag: str
    size: int
    last_modified: datetime | None = None


@dataclass(frozen=True)
class ObjectInfo:
    content_type: str
    etag: str
    size: int
    # User metadata, with the x-amz-meta- prefix removed and names lower-cased.
    metadata: dict[str, str]


def _translate(e: Exception, key: str) -> Exception:
    if isinstance(e, S3Error) and e.code in _MISSING:
        return ObjectNotFound(f"{key}: {e.code}")
    if isinstance(e, S3Error) and e.code == "PreconditionFailed":
        return ObjectExists(f"{key} is already stored")
    return StoreUnavailable(f"object store failed on {key}: {e}")


_FAILURES = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


def _http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


class ObjectStore:
    """Put, get and stat whole objects in one bucket; errors become the project's own."""

    def __init__(self, settings: Settings, bucket: str | None = None) -> None:
        self.bucket = bucket or settings.s3_bucket
        # Short timeouts and few retries: callers own the retry policy.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=30.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.1, status_forcelist=(502, 503, 504)),
            maxsize=32,
        )
        self._client = Minio(
            settings.s3_endpoint_host,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_endpoint_secure,
            region=settings.s3_region,
            http_client=http,
        )
        # Presigning is offline (the region is given): this client never connects. It names the public
        # address, and the read-only key when one is given (a presigned URL shows its access key id).
        public = settings.s3_public_endpoint.rstrip("/")
        presign_key = settings.s3_presign_access_key
        self._presigner = Minio(
            endpoint_host(public) if public else settings.s3_endpoint_host,
            access_key=presign_key or settings.s3_access_key,
            secret_key=(settings.s3_presign_secret_key if presign_key else settings.s3_secret_key).get_secret_value(),
            secure=public.startswith("https://") if public else settings.s3_endpoint_secure,
            region=settings.s3_region,
        )

    def ensure_bucket(self) -> None:
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except S3Error as e:
            if e.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise _translate(e, self.bucket) from e
        except _FAILURES as e:
            raise _translate(e, self.bucket) from e

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store bytes under key, overwriting; returns the ETag.

        With `if_absent`, only where nothing is stored yet (If-None-Match: *), else ObjectExists:
        one request decides between two writers of one key, wherever they run. MinIO, AWS S3,
        versitygw and SeaweedFS honour the condition. The client's put_object sends only its own
        headers, so that write goes through its single-request upload.
        """
        try:
            if if_absent:
                headers = {**normalize_headers(dict(metadata or {})), "Content-Type": content_type}
                result = self._client._put_object(self.bucket, key, data, {**headers, "If-None-Match": "*"})
            else:
                result = self._client.put_object(
                    self.bucket,
                    key,
                    io.BytesIO(data),
                    len(data),
                    content_type=content_type,
                    metadata=metadata,  # type: ignore[arg-type]
                )
        except _FAILURES as e:
            raise _translate(e, key) from e
        return str(result.etag).strip('"')

    def get(self, key: str) -> StoredObject:
        response = None
        try:
            response = self._client.get_object(self.bucket, key)
            data = response.read()
            content_type = response.headers.get("Content-Type", "application/octet-stream")
            etag = response.headers.get("ETag", "").strip('"')
            modified = response.headers.get("Last-Modified")
        except _FAILURES as e:
            raise _translate(e, key) from e
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        return StoredObject(data, content_type, etag, len(data), _http_date(modified))

    def stat(self, key: str) -> ObjectInfo:
        try:
            info = self._client.stat_object(self.bucket, key)
        except _FAILURES as e:
            raise _translate(e, key) from e
        prefix = "x-amz-meta-"
        metadata = {
            str(k).lower().removeprefix(prefix): str(v)
            for k, v in (info.metadata or {}).items()
            if str(k).lower().startswith(prefix)
        }
        return ObjectInfo(
            info.content_type or "application/octet-stream", str(info.etag).strip('"'), int(info.size or 0), metadata
        )

    def stream(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        """The object's bytes in chunks, without holding it whole in memory."""
        try:
            response = self._client.get_object(self.bucket, key)
        except _FAILURES as e:
            raise _translate(e, key) from e
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def delete(self, key: str) -> None:
        try:
            self._client.remove_object(self.bucket, key)
        except _FAILURES as e:
            raise _translate(e, key) from e

    def delete_many(self, keys: Sequence[str]) -> list[str]:
        """Delete up to 1,000 keys in one request (S3 DeleteObjects); absent keys are no error. Returns the
        keys the store refused to delete."""
        if not keys:
            return []
        try:
            errors = list(self._client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
        except _FAILURES as e:
            raise _translate(e, keys[0]) from e
        return [str(e.name) for e in errors if e.code not in _MISSING]

    def listed(self, prefix: str = "", start_after: str | None = None) -> Iterator[Listed]:
        """Every object under `prefix` with its time and size, in key order (lazily, a page at a time)."""
        try:
            for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True, start_after=start_after):
                if o.last_modified is not None:
                    yield Listed(str(o.object_name), o.last_modified, int(o.size or 0))
        except _FAILURES as e:
            raise _translate(e, prefix) from e

    def set_expiry_rules(self, rules: Sequence[tuple[str, int]]) -> bool:
        """Ask the store to expire objects itself: (prefix, days) rules, named imgresize-<prefix>, replacing the
        earlier ones of that name and keeping the bucket's other rules. False if the server has no lifecycle."""
        ours = [
            Rule(
                ENABLED,
                rule_filter=Filter(prefix=prefix),
                rule_id=f"{_RULE_PREFIX}{prefix.rstrip('/')}",
                expiration=Expiration(days=days),
            )
            for prefix, days in rules
        ]
        try:
            current = self._client.get_bucket_lifecycle(self.bucket)
            others = [
                r for r in (current.rules if current else []) if not str(r.rule_id or "").startswith(_RULE_PREFIX)
            ]
            if ours or others:
                self._client.set_bucket_lifecycle(self.bucket, LifecycleConfig([*others, *ours]))
            elif current is not None:
                self._client.delete_bucket_lifecycle(self.bucket)
        except S3Error as e:
            if e.code in {"NotImplemented", "MalformedXML", "InvalidRequest"}:
                return False
            raise _translate(e, self.bucket) from e
        except _FAILURES as e:
            raise _translate(e, self.bucket) from e
        return True

    def expiry_rules(self) -> list[tuple[str, int]] | None:
        """The store's (prefix, days) expiration rules; None if the server has no lifecycle."""
        try:
            config = self._client.get_bucket_lifecycle(self.bucket)
        except S3Error as e:
            if e.code == "NotImplemented":
                return None
            raise _translate(e, self.bucket) from e
        except _FAILURES as e:
            raise _translate(e, self.bucket) from e
        found = []
        for rule in config.rules if config else []:
            if rule.expiration is not None and rule.expiration.days and rule.rule_filter is not None:
                found.append((str(rule.rule_filter.prefix or ""), int(rule.expiration.days)))
        return found

    def presigned_get(self, key: str, expires: timedelta = timedelta(minutes=15)) -> str:
        """A time-limited GET URL on the public endpoint (S3_PUBLIC_ENDPOINT), signed for that host."""
        return str(self._presigner.presigned_get_object(self.bucket, key, expires=expires))

    def keys(self, prefix: str = "") -> list[str]:
        try:
            return [str(o.object_name) for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)]
        except _FAILURES as e:
            raise _translate(e, prefix) from e
