"""The real S3 server stores, serves, signs and refuses as the pipeline relies on."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests
from minio import Minio
from minio.error import S3Error

from common.errors import ObjectNotFound
from common.settings import Settings
from common.store import ObjectStore
from local_infra.stack import Infrastructure

pytestmark = pytest.mark.integration


def test_put_get_stat_presigned_of_a_5mb_object(settings: Settings) -> None:
    store = ObjectStore(settings)
    data = os.urandom(5 * 1024 * 1024)
    etag = store.put("blobs/five-mb", data, "application/octet-stream")
    assert etag

    got = store.get("blobs/five-mb")
    assert got.data == data
    assert got.size == len(data)

    info = store.stat("blobs/five-mb")
    assert info.size == len(data)
    assert info.content_type == "application/octet-stream"
    assert info.etag == etag

    url = store.presigned_get("blobs/five-mb")
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()

    assert b"".join(store.stream("blobs/five-mb", chunk_size=64 * 1024)) == data


def test_missing_object_is_not_found(settings: Settings) -> None:
    with pytest.raises(ObjectNotFound):
        ObjectStore(settings).get("nothing/here")


def test_wrong_secret_key_is_refused(infrastructure: Infrastructure, settings: Settings) -> None:
    intruder = Minio(
        infrastructure.s3_endpoint.removeprefix("http://"),
        access_key=infrastructure.s3_access_key,
        secret_key="not-the-secret",
        secure=False,
    )
    with pytest.raises(S3Error) as refused:
        intruder.list_objects(settings.s3_bucket).__next__()
    assert refused.value.code in {"SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId"}
