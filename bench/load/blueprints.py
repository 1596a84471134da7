"""The files the clients send: real PNG, JPG and PDF examples, each made unique; multipart bodies."""

from __future__ import annotations

import os
import random
import struct
import zlib

from bench.load.plan import EXAMPLES


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_blueprint(fmt: str, rng: random.Random, samples: dict[str, bytes]) -> bytes:
    """A valid file of ``fmt`` built from the example, made unique by random bytes where the format allows."""
    noise = rng.randbytes(rng.randint(16, 2048)).hex().encode()
    sample = samples[fmt]
    if fmt == "png":  # a tEXt chunk before IEND (the last 12 bytes)
        return sample[:-12] + _png_chunk(b"tEXt", b"load\x00" + noise) + sample[-12:]
    if fmt == "jpg":  # a COM segment right after SOI
        comment = noise[:65000]
        return sample[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + sample[2:]
    at = sample.rindex(b"startxref")  # a PDF comment before it: offsets stay right, %%EOF stays at the end
    return sample[:at] + b"% " + noise + b"\n" + sample[at:]


def load_samples() -> dict[str, bytes]:
    return {
        "png": (EXAMPLES / "plan.png").read_bytes(),
        "jpg": (EXAMPLES / "site.jpg").read_bytes(),
        "pdf": (EXAMPLES / "plan.pdf").read_bytes(),
    }


def multipart(
    fields: list[tuple[str, str]], file_field: str, filename: str, content_type: str, data: bytes
) -> tuple[bytes, str]:
    """A multipart/form-data body (text fields first, the file last) and its Content-Type."""
    boundary = "----load" + os.urandom(12).hex()
    out = bytearray()
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    disposition = f'form-data; name="{file_field}"; filename="{filename}"'
    out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
    out += data + f"\r\n--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
