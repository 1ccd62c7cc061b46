"""A small multipart/form-data parser.

Starlette's form parsing needs python-multipart, which is not a project dependency; the sandbox only
needs the few fields of POST /api/v1/seller/message, so it splits the body itself.
"""

import re
from dataclasses import dataclass

_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


class MultipartError(ValueError):
    pass


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


def _params(header_value: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _PARAM.finditer(header_value):
        quoted, bare = match.group(2), match.group(3)
        found[match.group(1).lower()] = bare if quoted is None else re.sub(r"\\(.)", r"\1", quoted)
    return found


def boundary_of(content_type: str) -> bytes:
    if not content_type.lower().startswith("multipart/form-data"):
        raise MultipartError("not multipart/form-data")
    boundary = _params(content_type).get("boundary")
    if not boundary:
        raise MultipartError("no boundary")
    return boundary.encode("latin-1")


def _part(chunk: bytes) -> Part:
    head, sep, data = chunk.partition(b"\r\n\r\n")
    if not sep:
        raise MultipartError("part without headers")
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, colon, value = line.partition(":")
        if colon:
            headers[key.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    params = _params(disposition)
    if "name" not in params:
        raise MultipartError("part without a name")
    content_type = headers.get("content-type", "text/plain").split(";")[0].strip().lower()
    return Part(params["name"], params.get("filename"), content_type, data)


def parse(body: bytes, content_type: str) -> list[Part]:
    # Each delimiter is CRLF + "--" + boundary; prefixing CRLF lets the first one match too.
    delimiter = b"\r\n--" + boundary_of(content_type)
    chunks = (b"\r\n" + body).split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        line_end = chunk.find(b"\r\n")  # skips transport padding after the boundary
        if line_end < 0:
            raise MultipartError("truncated part")
        parts.append(_part(chunk[line_end + 2 :]))
    raise MultipartError("no closing boundary")
