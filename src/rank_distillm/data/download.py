"""Downloading run files (the paper's Zenodo records): retries, resume and an MD5 check.

Where no MD5 is published (the authors' archive of evaluation runs), :func:`fetch` trusts
the first download: it records the file's MD5 in a checksum file (``md5sum`` format, for
the user to commit) and checks every later download, and :func:`verify_recorded` every
later use, against it.

Bytes go to ``<target>.part`` beside the target, with ``<target>.part.json`` recording the
URL, the expected MD5 and the server's validator (ETag or Last-Modified). Only a file whose
MD5 matches is renamed onto the target, so the target never exists half-written or
corrupted. Transient failures (HTTP 408/425/429/5xx, connection refused or reset, a
connection closed early, a timeout) are retried with exponential backoff; each retry resumes
the partial file with an HTTP Range request where the server allows it (206) and starts again
from zero where it does not (200). A failed download leaves the ``.part`` file, so running the
job again resumes it. A checksum mismatch deletes everything it downloaded.

Under Snakemake, the download rule's only output is the target: Snakemake neither sees nor
removes the ``.part`` files, and a rerun of the job picks them up.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO

from tqdm.auto import tqdm

LOGGER = logging.getLogger(__name__)
CHUNK = 1 << 20
#: Where the MD5 of a download without a published one is recorded (for the user to commit).
CHECKSUMS = "checksums"
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
# 501 Not Implemented and 505 HTTP Version Not Supported will not change on a retry.
_PERMANENT_5XX = {501, 505}
_TRANSIENT_4XX = {408, 425, 429}


class DownloadError(RuntimeError):
    """A failed download or a checksum mismatch; the message names the URL and file."""


class _Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's requested wait, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Partial:
    """The ``.part`` file, its ``.part.json`` record, and where a rerun may resume."""

    data: Path
    record: Path

    @classmethod
    def beside(cls, target: Path) -> _Partial:
        return cls(
            target.with_name(f"{target.name}.part"), target.with_name(f"{target.name}.part.json")
        )

    def resumable_bytes(self, url: str, md5: str | None) -> tuple[int, str | None]:
        """Bytes already fetched from this URL for this MD5 (else 0), and the validator."""
        try:
            record = json.loads(self.record.read_text())
            size = self.data.stat().st_size
        except (OSError, ValueError):
            return 0, None
        if not isinstance(record, dict) or record.get("url") != url or record.get("md5") != md5:
            return 0, None
        return size, record.get("validator")

    def start(self, url: str, md5: str | None, validator: str | None) -> None:
        """Record what the ``.part`` file holds, before writing its first byte."""
        self.record.write_text(json.dumps({"url": url, "md5": md5, "validator": validator}))

    def discard(self) -> None:
        self.data.unlink(missing_ok=True)
        self.record.unlink(missing_ok=True)


def download(
    url: str,
    path: str | os.PathLike[str],
    md5: str | None,
    timeout: float = 60.0,
    *,
    attempts: int = 5,
    backoff: float = 2.0,
    max_backoff: float = 120.0,
) -> str:
    """Fetch ``url`` to ``path`` and verify its MD5 (hex, case-insensitive); return the MD5.

    ``md5=None`` keeps whatever arrives complete (the caller records its MD5, see
    :func:`fetch`). Up to ``attempts`` tries; the wait before try ``n + 1`` is
    ``backoff * 2**(n - 1)`` seconds (or the server's Retry-After), at most
    ``max_backoff``. ``timeout`` applies to connecting and to each read. Raises
    DownloadError naming the URL and the file.
    """
    target = Path(path)
    if md5 is not None and not _MD5.fullmatch(md5):
        raise DownloadError(f"{target}: the configured MD5 {md5!r} is not 32 hex digits")
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    md5 = None if md5 is None else md5.lower()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = _Partial.beside(target)
    for attempt in range(1, attempts + 1):
        try:
            _fetch(url, target, md5, partial, timeout)
            break
        except _Transient as error:
            if attempt == attempts:
                kept = partial.data.stat().st_size if partial.data.exists() else 0
                resume = (
                    f"; the {kept} bytes fetched so far are kept in {partial.data} and a rerun "
                    "resumes them"
                    if kept
                    else ""
                )
                raise DownloadError(
                    f"{target}: downloading {url} failed {attempts} times, last: {error}{resume}"
                ) from error
            wait = min(max_backoff, backoff * 2 ** (attempt - 1))
            if error.retry_after is not None:
                wait = min(max_backoff, max(wait, error.retry_after))
            LOGGER.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.1f s",
                url,
                attempt,
                attempts,
                error,
                wait,
            )
            time.sleep(wait)
    return _verify_and_move(url, target, md5, partial)


def _fetch(url: str, target: Path, md5: str | None, partial: _Partial, timeout: float) -> None:
    """One try: continue ``partial`` (or start it) until the server has sent everything."""
    offset, validator = partial.resumable_bytes(url, md5)
    headers = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator  # a changed file is sent whole (200)
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status == 206:
                start = _range_start(response.headers.get("Content-Range"))
                if start != offset:
                    partial.discard()
                    raise _Transient(f"asked to resume at byte {offset}, got byte {start}")
                LOGGER.info("%s: resuming at byte %d", url, offset)
                mode = "ab"
            else:
                if offset:
                    LOGGER.info("%s: the server sent the whole file; starting again", url)
                offset = 0
                partial.start(url, md5, _validator(response.headers))
                mode = "wb"
            expected = _length(response.headers)
            with partial.data.open(mode) as handle:
                received = _stream(response, handle, target.name, offset, expected)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            if _range_total(error.headers.get("Content-Range")) == offset:
                return  # the partial file is complete: a crash came before the MD5 check
            LOGGER.warning(
                "%s: the server refused to resume at byte %d; starting again", url, offset
            )
            partial.discard()
            raise _Transient(f"HTTP 416 for a resume at byte {offset}") from error
        if error.code in _TRANSIENT_4XX or (error.code >= 500 and error.code not in _PERMANENT_5XX):
            raise _Transient(f"HTTP {error.code} {error.reason}", _retry_after(error)) from error
        raise DownloadError(
            f"{target}: downloading {url} failed: HTTP {error.code} {error.reason}"
        ) from error
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
    ) as error:
        raise _Transient(f"{type(error).__name__}: {error}") from error
    if expected is not None and received < expected:
        raise _Transient(f"the connection closed after {received} of {expected} bytes")


def _length(headers: Message) -> int | None:
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _validator(headers: Message) -> str | None:
    """What If-Range may carry: a strong ETag, else Last-Modified."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-\d+)?/(\d+|\*)")


def _range_start(value: str | None) -> int | None:
    match = _CONTENT_RANGE.match(value or "")
    return int(match[1]) if match and match[1].isdigit() else None


def _range_total(value: str | None) -> int | None:
    match = _CONTENT_RANGE.match(value or "")
    return int(match[2]) if match and match[2].isdigit() else None


def _retry_after(error: urllib.error.HTTPError) -> float | None:
    value = error.headers.get("Retry-After") if error.headers else None
    return float(value) if value and value.strip().isdigit() else None


def _stream(
    response: http.client.HTTPResponse,
    handle: IO[bytes],
    name: str,
    offset: int,
    expected: int | None,
) -> int:
    """Copy the body to ``handle`` with a progress bar; return the bytes received."""
    received = 0
    total = None if expected is None else offset + expected
    with tqdm(
        total=total, initial=offset, unit="B", unit_scale=True, desc=name, mininterval=5
    ) as bar:
        while chunk := response.read(CHUNK):
            handle.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received


def file_md5(path: str | os.PathLike[str], *, sync: bool = False) -> str:
    """The MD5 (hex) of a file, read in chunks; ``sync`` also flushes it to disk."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
        if sync:
            os.fsync(handle.fileno())
    return digest.hexdigest()


def _verify_and_move(url: str, target: Path, md5: str | None, partial: _Partial) -> str:
    found = file_md5(partial.data, sync=True)
    if md5 is not None and found != md5:
        partial.discard()
        raise DownloadError(
            f"{target}: MD5 {found} of the download from {url} does not match "
            f"the configured {md5}; nothing was kept"
        )
    os.replace(partial.data, target)
    partial.record.unlink(missing_ok=True)
    checked = "MD5 verified" if md5 is not None else f"MD5 {found}, no checksum to check"
    LOGGER.info("downloaded %s (%s, %s)", target, url, checked)
    return found


# --------------------------------------------------------------------------- recorded checksums


def checksum_path(name: str) -> str:
    """The checksum file of download ``name`` (``resources/<name>``), relative to the
    working directory."""
    return f"{CHECKSUMS}/{name}.md5"


def read_checksum_file(path: str | os.PathLike[str]) -> str | None:
    """The MD5 a checksum file records (``md5sum`` format: ``<md5>  <file>``), or None
    where the file does not exist."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    fields = text.split()
    if not fields or not _MD5.fullmatch(fields[0]):
        raise DownloadError(
            f"{path}: expected a line `<32 hex digits>  <file>` (md5sum format), got {text[:80]!r}"
        )
    return fields[0].lower()


def write_checksum_file(
    path: str | os.PathLike[str], md5: str, target: str | os.PathLike[str]
) -> None:
    """Record ``target``'s MD5 in ``md5sum`` format (``md5sum -c <path>`` checks it)."""
    from rank_distillm.data.atomic import atomic_write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, f"{md5}  {os.fspath(target)}\n")


def fetch(
    url: str,
    path: str | os.PathLike[str],
    md5: str | None = None,
    checksum_file: str | os.PathLike[str] | None = None,
    **options: float,
) -> str:
    """Download with the checksum that applies: a configured ``md5`` (published) first,
    else the one ``checksum_file`` recorded at the first download, else none, in which
    case the download's MD5 is recorded in ``checksum_file`` (trust on first use).
    Returns the MD5; ``options`` go to :func:`download`."""
    if md5 is None and checksum_file is None:
        raise ValueError(f"{path}: give an MD5 or a checksum file to record one in")
    recorded = None if md5 is not None else read_checksum_file(checksum_file)
    found = download(url, path, md5 or recorded, **options)
    if md5 is None and recorded is None:
        write_checksum_file(checksum_file, found, path)
        LOGGER.warning(
            "%s: no checksum is published; recorded MD5 %s in %s (commit it: later downloads "
            "and uses are checked against it)",
            path,
            found,
            checksum_file,
        )
    elif recorded is not None:
        LOGGER.info("%s: MD5 matches the one recorded in %s", path, checksum_file)
    return found


def check_recorded(
    path: str | os.PathLike[str],
    found: str,
    md5: str | None,
    checksum_file: str | os.PathLike[str],
) -> None:
    """Before a downloaded file is used: its MD5 ``found`` must equal the configured
    ``md5`` or the one recorded in ``checksum_file``; a file with neither (copied in by
    hand) gets ``found`` recorded now. A mismatch raises DownloadError."""
    expected = md5.lower() if md5 else read_checksum_file(checksum_file)
    if expected is None:
        write_checksum_file(checksum_file, found, path)
        LOGGER.warning("%s: recorded MD5 %s in %s (none was recorded)", path, found, checksum_file)
    elif found != expected:
        where = "configured" if md5 else f"recorded in {checksum_file}"
        raise DownloadError(
            f"{path}: MD5 {found} does not match the one {where} ({expected}); the file "
            "changed since: delete it to download it again"
        )
