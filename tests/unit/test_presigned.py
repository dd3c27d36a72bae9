"""Presigned redirects name the public endpoint, signed for it, without any connection being made."""

from urllib.parse import parse_qs, urlsplit

from common.settings import Settings
from common.store import ObjectStore


def test_a_presigned_url_names_the_public_endpoint_not_the_internal_one() -> None:
    settings = Settings(
        s3_endpoint="127.0.0.1:9000", s3_public_endpoint="https://images.example.com", s3_bucket="images"
    )
    url = urlsplit(ObjectStore(settings).presigned_get("results/t"))
    assert (url.scheme, url.netloc, url.path) == ("https", "images.example.com", "/images/results/t")
    query = parse_qs(url.query)
    assert query["X-Amz-SignedHeaders"] == ["host"] and query["X-Amz-Signature"][0]
    assert "127.0.0.1" not in url.geturl()


def test_without_a_public_endpoint_the_store_endpoint_is_used() -> None:
    settings = Settings(s3_endpoint="127.0.0.1:8333", s3_bucket="images")
    url = urlsplit(ObjectStore(settings).presigned_get("results/t"))
    assert (url.scheme, url.netloc) == ("http", "127.0.0.1:8333")


def test_a_read_only_key_signs_presigned_urls_when_one_is_given() -> None:
    settings = Settings(
        s3_endpoint="127.0.0.1:9000",
        s3_access_key="service-key",
        s3_presign_access_key="read-only-key",
        s3_presign_secret_key="read-only-secret",
    )
    url = ObjectStore(settings).presigned_get("results/t")
    credential = parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
    assert credential.startswith("read-only-key/") and "service-key" not in url
    default = ObjectStore(Settings(s3_endpoint="127.0.0.1:9000", s3_access_key="service-key")).presigned_get("k")
    assert parse_qs(urlsplit(default).query)["X-Amz-Credential"][0].startswith("service-key/")
