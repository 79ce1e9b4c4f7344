"""A corpus of hostile and malformed requests for a live `srgan serve`, and the runner
that fires them and sorts what came back.

Every case is raw bytes on its own TCP connection (so that nothing a client library
would tidy up is tidied up), optionally sent in timed pieces (slowloris). Each says what
a correct server answers: a set of statuses (errors must be JSON `{"detail": "..."}`),
or that it closes the connection. The outcome of a case is one of OUTCOMES; the first
four are good. `benchmarks/fuzz_server.py` prints the table; `tests/test_serve_fuzz.py`
requires every case to come out good.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import h11
import httpx
import numpy as np
from PIL import Image

OUTCOMES = (
    "expected 4xx JSON",
    "expected 2xx",
    "expected close",
    "expected 5xx JSON",
    "unexpected status",
    "5xx",
    "hang/timeout",
    "connection reset",
    "non-JSON error body",
    "leak",
)
GOOD = frozenset(OUTCOMES[:4])

# The settings a fuzzed server runs with: keys on, small limits, short timeouts.
FUZZ_SETTINGS = {
    "require_keys": True,
    "models": ["bicubic"],
    "default_model": "bicubic",
    "max_body_bytes": 2 * 1024 * 1024,
    "max_pixels": 1024 * 1024,
    "sync_max_pixels": 256 * 256,
    "header_timeout_s": 2.0,
    "request_timeout_s": 2.0,
    "rate_limit": {"per_second": 0},
    "auth_failure_limit": {"per_second": 0.05, "burst": 10},
    "trusted_proxies": [],
}
CLOSED = "closed"  # expect: the server closes the connection without an answer
LEAK_MARKERS = (b"SQLite format", b"root:x:", b"Traceback (most recent call last)")


@dataclass
class Keys:
    """API keys on the fuzzed server: `a` and `b` active, `revoked` revoked."""

    a: str
    b: str
    revoked: str


@dataclass
class Case:
    category: str
    name: str
    pieces: list[tuple[bytes, float]]  # (bytes, seconds to wait after sending them)
    expect: frozenset[int] | str
    timeout_s: float = 10.0
    source: str = "127.0.0.1"
    half_close: bool = False  # shut the sending side after the pieces
    closed_within_s: float | None = None  # the server must have closed by then


@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    reset: bool = False
    timed_out: bool = False
    seconds: float = 0.0
    send_failed_after_s: float | None = None  # the server had closed the connection


@dataclass
class Result:
    case: Case
    answer: Answer
    outcome: str
    note: str = ""


# ----------------------------------------------------------------------------- requests


def request_bytes(
    method: str,
    path: str,
    host: str,
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    files: dict | None = None,
    data: dict | None = None,
    content: bytes | None = None,
) -> bytes:
    """One HTTP/1.1 request, serialized as httpx would send it (Connection: close)."""
    all_headers = {"Connection": "close", **(headers or {})}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    request = httpx.Request(
        method,
        f"http://{host}{path}",
        headers=all_headers,
        files=files,
        data=data,
        content=content,
    )
    body = request.read()
    target = path.encode("latin-1")
    lines = [f"{method} ".encode() + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"fuzz") -> bytes:
    """A multipart body from (part headers, part body) pairs, as given (no checks)."""
    out = b""
    for head, body in parts:
        out += b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + body + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


def raw_post(path: str, host: str, key: str, content_type: bytes, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Authorization: Bearer {key}\r\n".encode()
        + b"Content-Type: "
        + content_type
        + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


# ----------------------------------------------------------------------------- images


def png(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG claiming width x height (gray, 8 bits), with the given compressed IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    dqt = b"\x00" + bytes(range(1, 65))
    return (
        b"\xff\xd8"
        + b"\xff\xdb"
        + struct.pack(">H", len(dqt) + 2)
        + dqt
        + b"\xff\xc0"
        + struct.pack(">H", len(sof) + 2)
        + sof
        + b"\xff\xd9"
    )


def tiff_header(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1)]
    entries += [(262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (279, 4, 1, 1)]
    ifd = struct.pack("<H", len(entries))
    ifd += b"".join(struct.pack("<HHII", *entry) for entry in entries) + b"\x00" * 4
    return b"II*\x00" + struct.pack("<I", 16) + b"\x00" * 8 + ifd


def bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def webp_header(width: int, height: int) -> bytes:
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gif_header(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b";"


# ----------------------------------------------------------------------------- the corpus


def corpus(host: str, keys: Keys, job_of_a: str) -> Iterator[Case]:
    """Every case, for a server at `host` ("127.0.0.1:PORT") whose key `keys.a` owns
    the finished job `job_of_a`."""
    yield from _multipart_cases(host, keys)
    yield from _option_cases(host, keys)
    yield from _image_cases(host, keys)
    yield from _body_cases(host, keys)
    yield from _head_cases(host)
    yield from _path_cases(host, keys)
    yield from _auth_cases(host, keys)
    yield from _job_cases(host, keys, job_of_a)
    yield from _slow_cases(host, keys)


ERRORS = frozenset({400, 401, 404, 405, 408, 413, 415, 422, 429, 431, 503, 504})


def _case(category: str, name: str, data: bytes, expect: frozenset[int] | str, **kwargs) -> Case:
    return Case(category, name, [(data, 0.0)], expect, **kwargs)


def _multipart_cases(host: str, keys: Keys) -> Iterator[Case]:
    image = png(16, 16)
    good_part = (b'Content-Disposition: form-data; name="image"; filename="a.png"', image)
    bad = frozenset({400, 413, 415, 422})
    for route in ("/v1/upscale", "/v1/jobs"):
        ok = frozenset({200}) if route == "/v1/upscale" else frozenset({202})
        post = lambda ctype, body, r=route: raw_post(r, host, keys.a, ctype, body)  # noqa: E731
        form = b"multipart/form-data; boundary=fuzz"
        yield _case("multipart", f"{route} well formed", post(form, multipart([good_part])), ok)
        yield _case("multipart", f"{route} no body", post(form, b""), bad)
        yield _case("multipart", f"{route} no boundary", post(b"multipart/form-data", b"x"), bad)
        yield _case(
            "multipart",
            f"{route} wrong boundary",
            post(b"multipart/form-data; boundary=other", multipart([good_part])),
            bad,
        )
        yield _case(
            "multipart",
            f"{route} unterminated",
            post(form, multipart([good_part])[:-12]),
            bad,
        )
        yield _case(
            "multipart",
            f"{route} two files",
            post(form, multipart([good_part, good_part])),
            bad,
        )
        fields = [
            (f'Content-Disposition: form-data; name="f{i}"'.encode(), b"1") for i in range(40)
        ]
        yield _case(
            "multipart", f"{route} 40 fields", post(form, multipart([*fields, good_part])), bad
        )
        long_field = (b'Content-Disposition: form-data; name="model"', b"x" * 5000)
        yield _case(
            "multipart", f"{route} 5 kB field", post(form, multipart([long_field, good_part])), bad
        )
        as_text = (b'Content-Disposition: form-data; name="image"', image)
        yield _case(
            "multipart", f"{route} image as a text field", post(form, multipart([as_text])), bad
        )
        other_name = (b'Content-Disposition: form-data; name="file"; filename="a.png"', image)
        yield _case(
            "multipart",
            f"{route} file under another name",
            post(form, multipart([other_name])),
            bad,
        )
        no_disposition = (b"Content-Type: image/png", image)
        yield _case(
            "multipart",
            f"{route} part without disposition",
            post(form, multipart([no_disposition])),
            bad,
        )
        for label, filename in (
            ("path filename", b"../../../../etc/passwd"),
            ("NUL filename", b"a\x00.png"),
            ("CRLF filename", b"a\r\nX-Injected: 1.png"),
            ("10 kB filename", b"a" * 10_000 + b".png"),
            ("non-UTF-8 filename", b"\xff\xfe.png"),
        ):
            part = (
                b'Content-Disposition: form-data; name="image"; filename="' + filename + b'"',
                image,
            )
            expect = ok | bad  # the name is never used: accepting it is fine
            yield _case("multipart", f"{route} {label}", post(form, multipart([part])), expect)
        yield _case(
            "multipart", f"{route} JSON body", post(b"application/json", b'{"image": 1}'), bad
        )
        yield _case(
            "multipart",
            f"{route} urlencoded body",
            post(b"application/x-www-form-urlencoded", b"image=abc&model=bicubic"),
            bad,
        )
        yield _case("multipart", f"{route} no content type", post(b"", multipart([good_part])), bad)
        nested = (
            b'Content-Disposition: form-data; name="image"\r\n'
            b"Content-Type: multipart/mixed; boundary=in",
            multipart([good_part], b"in"),
        )
        yield _case("multipart", f"{route} nested multipart", post(form, multipart([nested])), bad)


def _option_cases(host: str, keys: Keys) -> Iterator[Case]:
    image = {"image": ("a.png", png(16, 16), "image/png")}
    for field_name, values in {
        "outscale": ["abc", "-1", "0", "17", "1e309", "nan", "inf", "-inf", "1" * 400],
        "tile": ["-5", "3", "100000", "1e9", "x", "9" * 400],
        "tile_pad": ["-1", "999", "abc"],
        "quality": ["0", "101", "abc", ""],
        "format": ["gif", "PNG", "../png", ""],
        "alpha_mode": ["x", ""],
        "model": ["../../natural", "", "natural\x00", "x" * 900, "natural"],
        "unknown_field": ["1"],
    }.items():
        for value in values:
            data = request_bytes(
                "POST", "/v1/upscale", host, key=keys.a, files=image, data={field_name: value}
            )
            # "natural" is a real model this server does not serve; unknown fields and an
            # empty value of an optional field may be ignored.
            yield _case("options", f"{field_name}={value[:20]!r}", data, frozenset({200, 422}))


def _image_cases(host: str, keys: Keys) -> Iterator[Case]:
    refused = frozenset({400, 413, 415})
    bombs = {
        "empty file": b"",
        "1 byte": b"\x89",
        "PNG signature only": b"\x89PNG\r\n\x1a\n",
        "truncated PNG": png(32, 32)[:60],
        "PNG 0x0": png_header(0, 0),
        "PNG 30000x30000": png_header(30_000, 30_000),
        "PNG 1x2000000": png_header(1, 2_000_000),
        "PNG 2^31-1 square": png_header(2**31 - 1, 2**31 - 1),
        "PNG IDAT bomb 16000x16000": png_header(
            16_000, 16_000, zlib.compress(b"\x00" * (16_001 * 64), 9)
        ),
        "JPEG 60000x60000": jpeg_header(60_000, 60_000),
        "JPEG 0x0": jpeg_header(0, 0),
        "TIFF 100000x100000": tiff_header(100_000, 100_000),
        "TIFF 0x5": tiff_header(0, 5),
        "BMP 100000 x -100000": bmp_header(100_000, -100_000),
        "BMP 4 bytes": b"BM\x00\x00",
        "WebP 16383x16383": webp_header(16_383, 16_383),
        "GIF 16384x16384": gif_header(16_384, 16_384),
        "SVG": b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>',
        "HTML": b"<html><script>alert(1)</script></html>",
        "PNG polyglot with HTML": png_header(8, 8)[:33] + b"<script>alert(1)</script>",
        "ZIP": b"PK\x03\x04" + b"\x00" * 100,
        "ELF": b"\x7fELF" + b"\x00" * 100,
    }
    for name, data in bombs.items():
        for route in ("/v1/upscale", "/v1/jobs"):
            files = {"image": ("x.png", data, "image/png")}
            # A header the size check passes but that cannot be decoded fails at once
            # (sync) or as a failed job: a 202 is a correct answer for a job.
            expect = refused | ({202} if route == "/v1/jobs" else set())
            request = request_bytes("POST", route, host, key=keys.a, files=files)
            yield _case("images", f"{route} {name}", request, frozenset(expect))
    too_big_for_sync = {"image": ("x.png", png(300, 300), "image/png")}
    request = request_bytes("POST", "/v1/upscale", host, key=keys.a, files=too_big_for_sync)
    yield _case("images", "sync over sync_max_pixels", request, frozenset({413}))
    outscale = {"outscale": "16"}
    request = request_bytes(
        "POST",
        "/v1/jobs",
        host,
        key=keys.a,
        files={"image": ("x.png", png(700, 700))},
        data=outscale,
    )
    yield _case("images", "job whose result is too large", request, frozenset({413}))


def _body_cases(host: str, keys: Keys) -> Iterator[Case]:
    start = f"POST /v1/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    start += f"Authorization: Bearer {keys.a}\r\n"
    start += "Content-Type: multipart/form-data; boundary=fuzz\r\n"
    head = start.encode()
    yield _case(
        "body",
        "Content-Length over the limit, body sent",
        head + b"Content-Length: 3000000\r\n\r\n" + bytes(3_000_000),
        frozenset({413}),
    )
    yield _case(
        "body",
        "Content-Length 10^15, no body",
        head + b"Content-Length: 1000000000000000\r\n\r\n",
        frozenset({413}),
    )
    chunk = b"%x\r\n" % (256 * 1024) + bytes(256 * 1024) + b"\r\n"
    preamble = (
        b'--fuzz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
        b"\x89PNG\r\n\x1a\n"
    )
    first = b"%x\r\n" % len(preamble) + preamble + b"\r\n"
    yield _case(
        "body",
        "chunked over the limit",
        head + b"Transfer-Encoding: chunked\r\n\r\n" + first + chunk * 12 + b"0\r\n\r\n",
        frozenset({413}),
    )
    yield _case(
        "body", "negative Content-Length", head + b"Content-Length: -5\r\n\r\n", frozenset({400})
    )
    yield _case(
        "body",
        "Content-Length not a number",
        head + b"Content-Length: 12abc\r\n\r\n",
        frozenset({400}),
    )
    yield _case(
        "body",
        "two different Content-Lengths",
        head + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
        frozenset({400}),
    )
    yield _case(
        "body",
        "Content-Length and chunked (smuggling)",
        head + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        frozenset({400, 422}),  # refused, or chunked believed (as RFC 9112 says): empty form
    )
    yield _case(
        "body",
        "bad chunk size",
        head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        frozenset({400}),
    )
    yield Case(
        "body",
        "body shorter than Content-Length, then close",
        [(head + b"Content-Length: 1000\r\n\r\n--fuzz\r\n", 0.0)],
        CLOSED,
        timeout_s=15,
        half_close=True,
    )
    yield _case(
        "body",
        "Expect 100-continue without a key",
        f"POST /v1/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
        + b"Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n",
        frozenset({401, 429}),
    )


def _head_cases(host: str) -> Iterator[Case]:
    bad = frozenset({400})
    get = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    cases = {
        "garbage request line": b"HELLO THERE\r\n\r\n",
        "TLS ClientHello": bytes.fromhex("16030100a5010000a10303") + bytes(160),
        "HTTP/1.1 without Host": b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        "NUL in header": get.encode() + b"X-A: a\x00b\r\n\r\n",
        "CR in header value": get.encode() + b"X-A: a\rb\r\n\r\n",
        "space before colon": get.encode() + b"X-A : b\r\n\r\n",
        "no colon": get.encode() + b"just-a-name\r\n\r\n",
        "non-ASCII path": b"GET /h\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        "tab in method": b"GE\tT /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for name, data in cases.items():
        yield _case("head", name, data, bad)
    for name, data in {
        "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "HTTP/9.9": b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        "HTTP/0.5": b"GET /healthz HTTP/0.5\r\nHost: x\r\n\r\n",
    }.items():
        yield _case("head", name, data, frozenset({400, 505}))
    yield _case(
        "head",
        "obsolete line folding",
        get.encode() + b"X-A: a\r\n b\r\n\r\n",
        frozenset({200, 400}),
    )
    yield _case(
        "head", "latin-1 header value", get.encode() + b"X-A: caf\xe9\r\n\r\n", frozenset({200})
    )
    yield _case("head", "HTTP/1.0 without Host", b"GET /healthz HTTP/1.0\r\n\r\n", frozenset({200}))
    huge = get.encode() + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    yield _case("head", "70 kB header in one piece", huge, frozenset({400, 431}))
    yield Case(
        "head",
        "70 kB header in pieces",
        [(huge[:66_000], 0.2), (huge[66_000:], 0.0)],
        frozenset({400, 431}),
    )
    many = get.encode() + b"".join(b"X-%d: 1\r\n" % index for index in range(9000)) + b"\r\n"
    yield _case("head", "9000 headers", many, frozenset({400, 431}))
    for method in ("TRACE", "PUT", "PATCH", "CONNECT", "BREW", "get"):
        request = f"{method} /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        yield _case("methods", f"{method} /healthz", request.encode(), frozenset({405}))
    head = f"HEAD /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    yield _case("methods", "HEAD /healthz", head.encode(), frozenset({200, 405}))
    options = f"OPTIONS * HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    yield _case("methods", "OPTIONS *", options.encode(), frozenset({400, 404, 405}))
    upgrade = (
        f"GET /v1/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    yield _case("methods", "WebSocket upgrade", upgrade.encode(), frozenset({401, 405}))


def _path_cases(host: str, keys: Keys) -> Iterator[Case]:
    paths = {
        "/static/../../../../etc/passwd": {400, 404},
        "/static/%2e%2e/%2e%2e/srgan.sqlite3": {404},
        "/static/..%2f..%2fsrgan.sqlite3": {404},
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd": {404},
        "/static/.%00./app.js": {404},
        "/static/app.js%00.html": {404},
        "/static/": {404},
        "/static": {404, 307},
        "//etc/passwd": {404},
        "/srgan.sqlite3": {404},
        "/v1/jobs/..%2f..%2fhealthz": {404, 422},
        "/v1/jobs/%00": {404, 422},
        "/v1/jobs/" + "a" * 50_000: {404, 422, 431},
        "/healthz?" + "&".join(f"p{i}=1" for i in range(5000)): {200},
        "/docs?x=<script>alert(1)</script>": {200},
        "/%ff%fe": {404},
        "/v1/jobs/00000000-0000-0000-0000-000000000000/../../models": {404, 422},
    }
    for path, expect in paths.items():
        request = request_bytes("GET", path, host, key=keys.a)
        yield _case("paths", path[:60], request, frozenset(expect))


def _auth_cases(host: str, keys: Keys) -> Iterator[Case]:
    refused = frozenset({401, 429})
    secret = keys.a.split("_", 2)[2]
    key_id = keys.a.split("_")[1]
    headers = {
        "no key": {},
        "empty bearer": {"Authorization": "Bearer "},
        "bearer, spaces": {"Authorization": "Bearer      "},
        "basic auth": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "right id, wrong secret": {"Authorization": f"Bearer srgan_{key_id}_{'x' * 32}"},
        "right secret, wrong id": {"Authorization": f"Bearer srgan_000000000000_{secret}"},
        "revoked key": {"Authorization": f"Bearer {keys.revoked}"},
        "10 kB key": {"Authorization": "Bearer " + "k" * 10_000},
        "SQL in key": {"Authorization": "Bearer srgan_' OR '1'='1_" + "x" * 20},
        "bad X-API-Key": {"X-API-Key": "nope"},
        "good key after a bad one": {"Authorization": "Bearer nope", "X-API-Key": keys.a},
        "key in the query string": {},
    }
    nul = request_bytes("GET", "/v1/models", host).replace(
        b"\r\n\r\n", f"\r\nX-API-Key: {keys.a}\x00\r\n\r\n".encode()
    )
    yield _case("auth", "key + NUL", nul, frozenset({400}))  # refused by the HTTP parser
    for index, (name, header_set) in enumerate(headers.items()):
        path = f"/v1/models?api_key={keys.a}" if name == "key in the query string" else "/v1/models"
        try:
            request = request_bytes("GET", path, host, headers=header_set)
        except (httpx.InvalidURL, ValueError, UnicodeEncodeError):
            continue
        # Each from an address of its own, so that the 401 limit does not mix them.
        yield _case("auth", name, request, refused, source=f"127.0.1.{index + 1}")
    for attempt in range(14):  # a guesser from one address: 401 x 10, then 429
        request = request_bytes("GET", "/v1/models", host, key=f"srgan_{attempt:012x}_{'y' * 32}")
        expect = frozenset({401}) if attempt < 10 else frozenset({429})
        yield _case("auth flood", f"guess {attempt + 1}", request, expect, source="127.0.2.1")
    request = request_bytes("GET", "/v1/models", host, key=keys.a)
    yield _case(
        "auth flood", "a good key after the flood", request, frozenset({429}), source="127.0.2.1"
    )


def _job_cases(host: str, keys: Keys, job_of_a: str) -> Iterator[Case]:
    not_found = frozenset({404})
    for method, path in (
        ("GET", f"/v1/jobs/{job_of_a}"),
        ("GET", f"/v1/jobs/{job_of_a}/result"),
        ("DELETE", f"/v1/jobs/{job_of_a}"),
    ):
        yield _case(
            "jobs",
            f"key b: {method} {path[-14:]}",
            request_bytes(method, path, host, key=keys.b),
            not_found,
        )
        upper = path.replace(job_of_a, job_of_a.upper())  # the same UUID, spelled otherwise
        yield _case(
            "jobs",
            f"key b, upper case: {method}",
            request_bytes(method, upper, host, key=keys.b),
            not_found,
        )
    yield _case(
        "jobs",
        "key a still has it",
        request_bytes("GET", f"/v1/jobs/{job_of_a}", host, key=keys.a),
        frozenset({200}),
    )
    for name, job_id in (
        ("random UUID", str(uuid.uuid4())),
        ("not a UUID", "not-a-uuid"),
        ("UUID + suffix", f"{job_of_a}x"),
        ("braces", "{" + job_of_a + "}"),
        ("URN", f"urn:uuid:{job_of_a}"),
    ):
        request = request_bytes("GET", f"/v1/jobs/{job_id}", host, key=keys.b)
        yield _case("jobs", name, request, frozenset({404, 422}))


def _slow_cases(host: str, keys: Keys) -> Iterator[Case]:
    head = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n".encode()
    yield Case(
        "slow",
        "request head, one byte a second",
        [(bytes([byte]), 1.0) for byte in head[:6]],
        frozenset({408}),
        timeout_s=12,
    )
    yield Case(
        "slow", "request head that never ends", [(head, 0.0)], frozenset({408}), timeout_s=12
    )
    yield Case("slow", "connect, say nothing", [(b"", 0.0)], CLOSED, timeout_s=12)
    image = png(16, 16)
    body = multipart([(b'Content-Disposition: form-data; name="image"; filename="a.png"', image)])
    post = raw_post("/v1/jobs", host, keys.a, b"multipart/form-data; boundary=fuzz", body)
    cut = post.index(b"\r\n\r\n") + 4 + 100
    yield Case(
        "slow",
        "upload body that stalls",
        [(post[:cut], 0.0)],
        frozenset({504}),
        timeout_s=15,
    )
    unread = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000\r\n\r\n"
    yield Case(
        "slow",
        "unread body trickling after the answer",
        [(unread.encode(), 0.5)] + [(b"x" * 10, 0.5)] * 30,
        frozenset({200}),
        timeout_s=20,
        closed_within_s=8,  # header_timeout_s (2 s) after the answer, with slack
    )


# ----------------------------------------------------------------------------- running


def send_case(address: tuple[str, int], case: Case) -> Answer:
    """Send a case's pieces and read one answer (or what happens instead)."""
    answer = Answer()
    started = time.monotonic()
    deadline = started + case.timeout_s
    parser = h11.Connection(h11.CLIENT)
    try:
        with socket.create_connection(
            address, timeout=case.timeout_s, source_address=(case.source, 0)
        ) as sock:
            for data, pause in case.pieces:
                try:
                    if data:
                        sock.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The server closed early: read what it sent before.
                    answer.send_failed_after_s = time.monotonic() - started
                    break
                if pause:
                    time.sleep(pause)
            if case.half_close:
                sock.shutdown(socket.SHUT_WR)
            _read_answer(sock, parser, answer, deadline)
    except ConnectionResetError:
        answer.reset = True
    except TimeoutError:
        answer.timed_out = True
    answer.seconds = time.monotonic() - started
    return answer


def _read_answer(
    sock: socket.socket, parser: h11.Connection, answer: Answer, deadline: float
) -> None:
    # The client side of h11 must believe a request was sent before it parses an answer.
    parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    parser.send(h11.EndOfMessage())
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            answer.timed_out = True
            return
        sock.settimeout(remaining)
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError:
            return
        if event is h11.NEED_DATA:
            try:
                parser.receive_data(sock.recv(65536))
            except ConnectionResetError:
                answer.reset = answer.status is None
                return
            continue
        if isinstance(event, h11.InformationalResponse):
            continue
        if isinstance(event, h11.Response):
            answer.status = event.status_code
            answer.headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
        elif isinstance(event, h11.Data):
            answer.body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return


def classify(case: Case, answer: Answer) -> tuple[str, str]:
    """(outcome, note) of one case."""
    if any(marker in answer.body for marker in LEAK_MARKERS):
        return "leak", answer.body[:80].decode("latin-1")
    if answer.timed_out:
        return "hang/timeout", f"no answer in {case.timeout_s:g} s"
    if answer.status is None:
        if case.expect == CLOSED:
            return "expected close", f"closed after {answer.seconds:.1f} s"
        return "connection reset", "no answer"
    status = answer.status
    if status >= 400:
        problem = _json_problem(answer)
        if problem:
            return "non-JSON error body", f"{status}: {problem}"
    if isinstance(case.expect, str) or status not in case.expect:
        outcome = "5xx" if status >= 500 else "unexpected status"
        return outcome, f"got {status}, expected {case.expect}: {answer.body[:120]!r}"
    closed = answer.send_failed_after_s
    if case.closed_within_s is not None and (closed is None or closed > case.closed_within_s):
        return "hang/timeout", f"still open after {case.closed_within_s:g} s"
    if status >= 500:
        return "expected 5xx JSON", str(status)
    return ("expected 4xx JSON" if status >= 400 else "expected 2xx"), str(status)


def _json_problem(answer: Answer) -> str:
    content_type = answer.headers.get("content-type", "")
    if content_type.split(";")[0].strip() != "application/json":
        return f"content-type {content_type!r}"
    if not answer.body:  # HEAD
        return ""
    try:
        detail = json.loads(answer.body)["detail"]
    except (ValueError, KeyError, TypeError):
        return f"body {answer.body[:80]!r}"
    return "" if isinstance(detail, str) and detail else f"detail {detail!r}"


def run_corpus(
    url: str, keys: Keys, job_of_a: str, on_result: Callable[[Result], None] | None = None
) -> list[Result]:
    host = url.removeprefix("http://")
    name, port = host.rsplit(":", 1)
    results = []
    for case in corpus(host, keys, job_of_a):
        answer = send_case((name, int(port)), case)
        outcome, note = classify(case, answer)
        result = Result(case, answer, outcome, note)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def table(results: list[Result]) -> str:
    """Counts by outcome, then by category, then every case that did not come out good."""
    by_outcome = Counter(result.outcome for result in results)
    lines = [f"{len(results)} cases", f"{'outcome':<24}{'cases':>7}", "-" * 31]
    lines += [f"{outcome:<24}{by_outcome.get(outcome, 0):>7}" for outcome in OUTCOMES]
    categories = sorted({result.case.category for result in results})
    lines += ["", f"{'category':<14}{'cases':>7}{'good':>7}{'bad':>6}", "-" * 34]
    for category in categories:
        mine = [result for result in results if result.case.category == category]
        good = sum(result.outcome in GOOD for result in mine)
        lines.append(f"{category:<14}{len(mine):>7}{good:>7}{len(mine) - good:>6}")
    bad = [result for result in results if result.outcome not in GOOD]
    if bad:
        lines += ["", "not good:"]
        lines += [f"  [{r.case.category}] {r.case.name}: {r.outcome} ({r.note[:160]})" for r in bad]
    return "\n".join(lines)


def prepare(url: str, data_dir) -> tuple[Keys, str]:
    """Keys a, b and a revoked one in the server's database, and a finished job of a."""
    from srgan.serve.auth import KeyStore
    from srgan.serve.database import Database

    store = KeyStore(Database(data_dir / "srgan.sqlite3"))
    tag = uuid.uuid4().hex[:8]
    keys = Keys(*(store.add(f"fuzz-{name}-{tag}")[1] for name in ("a", "b", "revoked")))
    store.revoke(f"fuzz-revoked-{tag}")
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys.a}"}) as client:
        job = client.post("/v1/jobs", files={"image": ("a.png", png(16, 16))})
        job_id = job.raise_for_status().json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job_id}").json()["state"] not in ("done", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError("the fuzzer's own job did not finish")
            time.sleep(0.1)
    return keys, job_id
