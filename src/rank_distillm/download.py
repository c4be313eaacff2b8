"""Downloading run files (the paper's Zenodo records) with an MD5 check.

The file is streamed into a temporary file beside the target and only renamed into
place once its MD5 matches, so an interrupted or corrupted download never looks
complete.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from rank_distillm.io import atomic_output

LOGGER = logging.getLogger(__name__)
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A failed download or a checksum mismatch; the message names the URL and file."""


def download(url: str, path: Path, md5: str, timeout: float = 60.0) -> None:
    """Fetch ``url`` to ``path`` and verify its MD5 (hex, case-insensitive)."""
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_output(path) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                tmp.open("wb") as handle,
                tqdm(total=total, unit="B", unit_scale=True, desc=path.name, mininterval=5) as bar,
            ):
                while chunk := response.read(CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if digest.hexdigest() != md5.lower():
                raise DownloadError(
                    f"{path}: MD5 {digest.hexdigest()} of the download from {url} does not "
                    f"match the configured {md5.lower()}; the file was not kept"
                )
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise DownloadError(f"{path}: downloading {url} failed: {error}") from error
    LOGGER.info("downloaded %s (%s, MD5 verified)", path, url)
