"""Pieces that need no HTTP: reversible ids, reply signs, the multipart parser, isolation."""

import ast
from pathlib import Path

import httpx
import pytest

from app.sandbox import multipart
from app.sandbox.ids import decode_item_id, decode_sign, encode_item_id, encode_sign

SANDBOX = Path(__file__).resolve().parents[2] / "app" / "sandbox"


def test_item_ids_decode_back_to_their_index_for_their_key_only() -> None:
    key = 0xC0FFEE
    ids = [encode_item_id(key, i) for i in (*range(1000), 999_999, 2**32 - 1)]

    assert len(set(ids)) == len(ids)
    assert all(len(i) == 20 and i.isalnum() for i in ids)
    assert [decode_item_id(key, i) for i in ids] == [*range(1000), 999_999, 2**32 - 1]
    assert decode_item_id(key + 1, ids[0]) is None
    assert decode_item_id(key, "YX52RZEBhH9mrcYdEJuD") is None
    assert decode_item_id(key, "short") is None
    assert decode_item_id(key, "!" * 20) is None


def test_reply_signs_cannot_be_forged() -> None:
    sign = encode_sign(b"seller secret", 41)

    assert decode_sign(b"seller secret", sign) == 41
    assert decode_sign(b"another secret", sign) is None
    assert decode_sign(b"seller secret", sign[:-2] + "AA") is None
    assert decode_sign(b"seller secret", "%%%") is None


def test_multipart_fields_and_files_are_parsed() -> None:
    request = httpx.Request(
        "POST",
        "http://sandbox/",
        files=[
            ("replySign", (None, "abc")),
            ("message", (None, "Здравствуйте!\r\n--не граница")),
            ("file", ("фото; 1.png", b"\x89PNG\r\n\r\n--x", "image/png")),
        ],
    )
    body = request.read()

    parts = multipart.parse(body, request.headers["content-type"])

    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("replySign", None, "text/plain"),
        ("message", None, "text/plain"),
        ("file", "фото; 1.png", "image/png"),
    ]
    assert parts[1].data.decode() == "Здравствуйте!\r\n--не граница"
    assert parts[2].data == b"\x89PNG\r\n\r\n--x"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"a=1"),
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nno headers--x--"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1',
        ),
    ],
)
def test_broken_multipart_is_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(multipart.MultipartError):
        multipart.parse(body, content_type)


def test_the_sandbox_imports_nothing_else_from_the_app() -> None:
    for path in SANDBOX.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert (
                    name == "app.sandbox"
                    or name.startswith("app.sandbox.")
                    or not (name == "app" or name.startswith("app."))
                ), f"{path.name} imports {name}"
