"""Read one file field of a multipart upload, refusing it as soon as it is too large.

Starlette's form parser limits text fields only and spools files of any size;
this reads the request stream itself and stops at the first byte past the
limit, so an oversized upload never costs more than the limit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import Request

from inventory.errors import (
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)

# Room for the multipart framing and small fields around the file.
FRAMING_ALLOWANCE = 64 * 1024


@dataclass
class _Part:
    name: str | None = None
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


async def read_file_field(request: Request, name: str, limit: int) -> tuple[str | None, bytes]:
    """The filename and bytes of multipart field ``name``; 413 past ``limit`` bytes."""
    too_large = PayloadTooLarge(f"The file is larger than the limit of {limit} bytes.")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType("Upload the file as multipart/form-data.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FRAMING_ALLOWANCE:
        raise too_large

    parts: list[_Part] = []
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        if header["field"].lower() == b"content-disposition":
            _, params = parse_options_header(header["value"])
            parts[-1].name = params.get(b"name", b"").decode("utf-8", "replace")
            if b"filename" in params:
                parts[-1].filename = params[b"filename"].decode("utf-8", "replace")
        header["field"] = header["value"] = b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        part = parts[-1]
        if part.name != name:
            return
        part.data += data[start:end]
        if len(part.data) > limit:
            raise too_large

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
        },
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + FRAMING_ALLOWANCE:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedBody(f"The multipart body is malformed: {exc}.") from None
    if parser.state is not MultipartState.END:
        raise MalformedBody("The multipart body ends before its closing boundary.")

    files = [part for part in parts if part.name == name]
    if len(files) != 1:
        message = "Field required" if not files else "send exactly one file"
        raise ValidationFailed(
            "The request needs exactly one file.",
            [field_error(("body", name), message, "missing" if not files else "too_many")],
        )
    return files[0].filename, bytes(files[0].data)
