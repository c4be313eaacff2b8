"""Opening users' text files safely: compression by magic bytes, strict UTF-8 with positions.

Run, qrels and topics files arrive from many tools: gzip'ed without a ``.gz`` suffix, with a
byte-order mark, with CRLF line ends, or in Latin-1. Compression is recognised from the
file's first bytes (the suffix is not trusted); text must be UTF-8, and a byte that is not
is reported with its line and byte offset rather than decoded by guesswork. A truncated or
corrupt compressed stream fails with the file name instead of a bare ``EOFError``.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

__all__ = ["FileFormatError", "detect_compression", "numbered_lines", "stream_errors"]

PathLike = str | os.PathLike[str]

_BZ2_BLOCK = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")  # block, end of stream
_BINARY_OPENERS: dict[str | None, Callable[..., IO[bytes]]] = {
    None: open,
    "gzip": gzip.open,
    "bz2": bz2.open,
    "xz": lzma.open,
}
# What a damaged compressed stream raises while it is read.
_STREAM_ERRORS = (EOFError, zlib.error, lzma.LZMAError, OSError)


class FileFormatError(ValueError):
    """A malformed input file; the message starts with ``file:line:`` (or ``file:``)."""


def located(path: PathLike, line: int | None, what: str) -> str:
    """``file:line: what`` (or ``file: what`` when no line applies)."""
    where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
    return f"{where}: {what}"


def detect_compression(path: PathLike) -> str | None:
    """``"gzip"``, ``"bz2"``, ``"xz"`` or ``None`` (plain), from the file's first bytes.

    zstd is recognised only to refuse it with a clear message: pandas would need an extra
    package to read it.
    """
    with open(path, "rb") as handle:
        head = handle.read(10)
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in _BZ2_BLOCK:
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise FileFormatError(
            located(path, None, "is zstd-compressed; decompress it or recompress it with gzip")
        )
    return None


@contextmanager
def stream_errors(path: PathLike, compression: str | None) -> Iterator[None]:
    """Turn a damaged compressed stream's exception into a FileFormatError naming ``path``."""
    if compression is None:
        yield
        return
    try:
        yield
    except FileFormatError:
        raise
    except _STREAM_ERRORS as error:
        if isinstance(error, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        what = f"the {compression} stream is truncated or corrupt ({error}); fetch the file again"
        raise FileFormatError(located(path, None, what)) from error


def numbered_lines(path: PathLike, compression: str | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, text)`` with the line end kept, decoding strictly as UTF-8.

    A leading byte-order mark is dropped. A byte that is not UTF-8 raises a FileFormatError
    naming the line and the byte's offset in the (decompressed) file.
    """
    offset = 0
    with stream_errors(path, compression), _BINARY_OPENERS[compression](path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            start = len(codecs.BOM_UTF8) if number == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as error:
                bad = start + error.start
                what = (
                    f"the byte at offset {offset + bad} (0x{raw[bad]:02x}) is not valid UTF-8 "
                    f"({error.reason}); "
                    "the file must be UTF-8 encoded (convert it, e.g. with iconv -t utf-8)"
                )
                raise FileFormatError(located(path, number, what)) from None
            offset += len(raw)
            yield number, text
