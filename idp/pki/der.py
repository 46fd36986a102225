"""Just enough DER to reach what `cryptography` does not expose for SM2: the SPKI point and
the strings inside extension values of CAs that wrap them in different ways."""
from __future__ import annotations

from typing import Iterator, NamedTuple


class DerError(ValueError):
    """Bytes that are not the DER expected."""


class Tlv(NamedTuple):
    tag: int
    value: bytes
    end: int  # offset just past this element


def read(data: bytes, offset: int = 0) -> Tlv:
    """One element at `offset` (single-byte tags, definite lengths: DER)."""
    if offset + 2 > len(data):
        raise DerError("truncated element")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise DerError("bad length")
        length = int.from_bytes(data[offset:offset + count], "big")
        offset += count
    else:
        length = first
    if offset + length > len(data):
        raise DerError("truncated value")
    return Tlv(tag, data[offset:offset + length], offset + length)


def children(value: bytes) -> Iterator[Tlv]:
    """The elements inside a constructed value, in order."""
    offset = 0
    while offset < len(value):
        element = read(value, offset)
        yield element
        offset = element.end


def integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes([0x02]) + encode_length(len(raw)) + raw


def sequence(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return bytes([0x30]) + encode_length(len(body)) + body


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


STRING_TAGS = {0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A, 0x1E}  # UTF8, Numeric, Printable, T61, IA5, Visible, BMP


def first_string(data: bytes, depth: int = 0) -> str | None:
    """The first character string inside `data`, looking through SEQUENCE/SET/OCTET STRING/tagged
    wrappers; None when there is none (GM/T 0015 values come wrapped in several ways)."""
    if depth > 6:
        return None
    try:
        for element in children(data):
            if element.tag in STRING_TAGS:
                return element.value.decode("utf-16-be" if element.tag == 0x1E else "utf-8")
            if element.tag in (0x30, 0x31, 0x04) or element.tag & 0xA0 == 0xA0:
                found = first_string(element.value, depth + 1)
                if found is not None:
                    return found
    except (DerError, UnicodeDecodeError):
        return None
    return None
