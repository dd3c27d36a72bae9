"""The upload parser gives what werkzeug's gives, with the same limits, on good and bad bodies."""

from __future__ import annotations

import io

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from producer_api.multipart import FastFormDataParser

FORM = (
    b'--b\r\nContent-Disposition: form-data; name="width"\r\n\r\n400\r\n'
    b'--b\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    b"\xff\xd8DATA\r\n--not-the-boundary\r\n\xff\xd9\r\n--b--\r\n"
)

BODIES = {
    "a field and a file": FORM,
    "no CRLF after the closing boundary": FORM[:-2],
    "truncated in the file": FORM[:-12],
    "truncated in the headers": FORM[:60],
    "a preamble and an epilogue": b"preamble\r\n" + FORM + b"epilogue",
    "a part without Content-Disposition": FORM.replace(b'Content-Disposition: form-data; name="width"', b"X-Other: y"),
    "a declared latin-1 field": b'--b\r\nContent-Disposition: form-data; name="a"\r\n'
    b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9\r\n--b--\r\n",
    "undecodable UTF-8": b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\xfe\r\n--b--\r\n',
    "an empty filename": b'--b\r\nContent-Disposition: form-data; name="a"; filename=""\r\n\r\nzz\r\n--b--\r\n',
    "a repeated field": b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n'
    b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\ny\r\n--b--\r\n',
    "no parts": b"--b--\r\n",
    "empty": b"",
    "no boundary at all": b"garbage",
    "bare LF line breaks": b'--b\nContent-Disposition: form-data; name="a"\n\nx\n--b--\n',
}


def _parse(parser_class: type[FormDataParser], body: bytes, **limits: int) -> object:
    parser = parser_class(
        stream_factory=lambda **_: io.BytesIO(),
        max_form_memory_size=limits.get("memory", 500_000),
        max_form_parts=limits.get("parts", 1000),
    )
    try:
        _, form, files = parser.parse(io.BytesIO(body), "multipart/form-data", len(body), {"boundary": "b"})
    except RequestEntityTooLarge:
        return "413"
    return (
        dict(form.lists()),
        {name: [(f.filename, f.read(), f.content_type) for f in parts] for name, parts in files.lists()},
    )


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_the_form_is_what_werkzeug_makes_of_it(body: bytes) -> None:
    assert _parse(FastFormDataParser, body) == _parse(FormDataParser, body)


def test_a_good_form_is_read_whole() -> None:
    form, files = _parse(FastFormDataParser, FORM)  # type: ignore[misc]
    assert form == {"width": ["400"]}
    assert files == {"file": [("p.jpg", b"\xff\xd8DATA\r\n--not-the-boundary\r\n\xff\xd9", "image/jpeg")]}


@pytest.mark.parametrize(
    ("limits", "why"),
    [({"parts": 1}, "more parts than max_form_parts"), ({"memory": 2}, "a text part over max_form_memory_size")],
)
def test_the_limits_are_werkzeugs(limits: dict[str, int], why: str) -> None:
    assert _parse(FastFormDataParser, FORM, **limits) == "413", why
    assert _parse(FormDataParser, FORM, **limits) == "413", why


def test_long_part_headers_are_refused_like_a_long_field() -> None:
    header = b'--b\r\nContent-Disposition: form-data; name="a"\r\nX-Pad: ' + b"p" * 5000 + b"\r\n\r\nx\r\n--b--\r\n"
    assert _parse(FastFormDataParser, header, memory=1000) == "413"


def test_a_file_part_is_not_held_to_the_text_limit() -> None:
    big = b"\x00" * 100_000
    body = b'--b\r\nContent-Disposition: form-data; name="f"; filename="x"\r\n\r\n' + big + b"\r\n--b--\r\n"
    assert _parse(FastFormDataParser, body, memory=1000) == ({}, {"f": [("x", big, None)]})


class _Trickle(io.RawIOBase):
    """A server's input that hands over at most 1,000 bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_body_that_arrives_in_short_reads_is_read_whole() -> None:
    parser = FastFormDataParser(stream_factory=lambda **_: io.BytesIO(), max_form_memory_size=500_000)
    _, form, files = parser.parse(_Trickle(FORM), "multipart/form-data", len(FORM), {"boundary": "b"})  # type: ignore[arg-type]
    assert form.to_dict() == {"width": "400"}
    assert files["file"].read() == b"\xff\xd8DATA\r\n--not-the-boundary\r\n\xff\xd9"
