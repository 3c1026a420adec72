"""Zip archives for tests: good ones from zipfile, broken ones by patching their bytes."""

from __future__ import annotations

import io
import struct
import zipfile

# Ways one entry of an archive can be broken (see break_entry).
BREAKAGES = ("bad_crc", "encrypted", "unknown_method", "corrupt_deflate", "local_name_mismatch")

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"


def zip_bytes(entries, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip archive from (name or ZipInfo, bytes or str) pairs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def _central_offset(data: bytes, name: str) -> int:
    """Offset of `name`'s central directory header."""
    encoded = name.encode()
    offset = data.find(_CENTRAL)
    while offset >= 0:
        length = struct.unpack_from("<H", data, offset + 28)[0]
        if data[offset + 46 : offset + 46 + length] == encoded:
            return offset
        offset = data.find(_CENTRAL, offset + 4)
    raise KeyError(name)


def break_entry(data: bytes, name: str, how: str) -> bytes:
    """A copy of the zip `data` with entry `name` broken in one of BREAKAGES' ways.

    Both headers are patched where both carry the field, as a hostile tool would.
    """
    buf = bytearray(data)
    central = _central_offset(data, name)
    local = struct.unpack_from("<I", data, central + 42)[0]
    assert buf[local : local + 4] == _LOCAL
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    data_start = local + 30 + name_len + extra_len
    if how == "bad_crc":
        for offset in (local + 14, central + 16):
            buf[offset] ^= 0xFF
    elif how == "encrypted":
        buf[local + 6] |= 0x01
        buf[central + 8] |= 0x01
    elif how == "unknown_method":
        struct.pack_into("<H", buf, local + 8, 77)
        struct.pack_into("<H", buf, central + 10, 77)
    elif how == "corrupt_deflate":
        assert struct.unpack_from("<H", data, central + 10)[0] == zipfile.ZIP_DEFLATED
        buf[data_start] = 0x07  # last block, block type 3: "invalid block type"
    elif how == "local_name_mismatch":
        buf[local + 30] = ord("X") if buf[local + 30] != ord("X") else ord("Y")
    else:
        raise ValueError(how)
    return bytes(buf)


def undecodable_name(data: bytes, name: str) -> bytes:
    """A copy whose central entry for `name` claims UTF-8 but holds a byte that is not."""
    buf = bytearray(data)
    central = _central_offset(data, name)
    buf[central + 9] |= 0x08  # flag bit 11 (0x800, "UTF-8 names") is in the second byte
    buf[central + 46] = 0xFF
    return bytes(buf)
