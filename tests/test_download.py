"""Downloads against a local HTTP server on 127.0.0.1 that misbehaves on purpose.

The server serves a good file, a corrupted one, one whose first response is cut off (a
clean close or a connection reset), one answering 503 twice, one without Range support,
a slow one, and a missing one; it records every request so the tests can check that a
retry resumed where the cut happened.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from rank_distillm.data import download as download_module
from rank_distillm.data.download import DownloadError, download
from tests.workflow_runner import copy_workflow, snakemake

TEACHER_RUN = b"1002990 Q0 3227618 1 100 rank\n1002990 Q0 17 2 99 rank\n"
MD5 = hashlib.md5(TEACHER_RUN).hexdigest()
PAYLOAD = bytes(range(256)) * 800  # 204,800 bytes
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
CUT = 70_000
FAST = {"backoff": 0.001, "timeout": 5.0}  # retries without waiting


@dataclass
class Resource:
    """How the test server answers one path."""

    body: bytes
    ranges: bool = True  # honour Range requests (206), else always send the whole file (200)
    fail_first: tuple[int, ...] = ()  # status codes of the first requests
    cut_first: int | None = None  # the first full answer stops after this many bytes ...
    reset: bool = False  # ... with a TCP reset instead of a clean close
    delay_first: float = 0.0  # seconds before the first answer
    etag: str | None = None
    retry_after: str | None = None
    requests: list[dict[str, str | None]] = field(default_factory=list)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    resources: dict[str, Resource]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # cut connections are on purpose


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        resource = self.server.resources.get(self.path)
        if resource is None:
            self.send_error(404)
            return
        wanted = {"range": self.headers.get("Range"), "if_range": self.headers.get("If-Range")}
        resource.requests.append(wanted)
        number = len(resource.requests)
        if number <= len(resource.fail_first):
            self.send_response(resource.fail_first[number - 1])
            if resource.retry_after is not None:
                self.send_header("Retry-After", resource.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if number == 1 and resource.delay_first:
            time.sleep(resource.delay_first)
        body, start = resource.body, 0
        honour = resource.ranges and wanted["range"] is not None
        if honour and wanted["if_range"] is not None and wanted["if_range"] != resource.etag:
            honour = False  # the file changed since the partial download: send it whole
        if honour:
            start = int(wanted["range"].removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        if resource.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if resource.etag:
            self.send_header("ETag", resource.etag)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = body[start:]
        if start == 0 and resource.cut_first is not None and self._first_full_answer(resource):
            self.wfile.write(data[: resource.cut_first])
            self.wfile.flush()
            if resource.reset:  # SO_LINGER 0: close() sends RST
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()
            return
        self.wfile.write(data)

    @staticmethod
    def _first_full_answer(resource: Resource) -> bool:
        return len(resource.requests) == len(resource.fail_first) + 1


@contextmanager
def serving(resources: dict[str, Resource]) -> Iterator[str]:
    """A server on 127.0.0.1 answering from ``resources`` (editable while it runs); yields
    its base URL."""
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.resources = resources
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, Resource]]]:
    """A server on 127.0.0.1; yields its base URL and the resources it serves (editable)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    resources = {
        "/teacher.run": Resource(TEACHER_RUN),
        "/good.bin": Resource(PAYLOAD),
        "/corrupt.bin": Resource(PAYLOAD[:-1] + b"\x00"),
        "/truncated.bin": Resource(PAYLOAD, cut_first=CUT),
        "/reset.bin": Resource(PAYLOAD, cut_first=CUT, reset=True),
        "/flaky.bin": Resource(PAYLOAD, fail_first=(503, 503)),
        "/norange.bin": Resource(PAYLOAD, ranges=False, cut_first=CUT),
        "/slow.bin": Resource(PAYLOAD, delay_first=2.0),
        "/versioned.bin": Resource(PAYLOAD, etag='"v2"'),
    }
    with serving(resources) as base:
        yield base, resources


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


# --------------------------------------------------------------------------- good and bad files


def test_download_verifies_and_keeps_the_file(server, tmp_path: Path) -> None:
    base, resources = server
    target = tmp_path / "resources" / "teacher.run"
    download(f"{base}/teacher.run", target, MD5.upper())
    assert target.read_bytes() == TEACHER_RUN
    assert names(target.parent) == ["teacher.run"]
    assert resources["/teacher.run"].requests == [{"range": None, "if_range": None}]


def test_checksum_mismatch_names_both_checksums_and_keeps_nothing(server, tmp_path) -> None:
    base, _ = server
    target = tmp_path / "good.bin"
    with pytest.raises(DownloadError) as error:
        download(f"{base}/corrupt.bin", target, PAYLOAD_MD5, **FAST)
    message = str(error.value)
    actual = hashlib.md5(PAYLOAD[:-1] + b"\x00").hexdigest()
    assert str(target) in message and actual in message and PAYLOAD_MD5 in message
    assert "nothing was kept" in message
    assert names(tmp_path) == []  # no target, no .part, no .part.json


def test_checksum_mismatch_leaves_an_older_file_untouched(server, tmp_path: Path) -> None:
    base, _ = server
    target = tmp_path / "teacher.run"
    target.write_text("an older, complete file\n")
    with pytest.raises(DownloadError, match="0{32}"):
        download(f"{base}/teacher.run", target, "0" * 32)
    assert target.read_text() == "an older, complete file\n"
    assert names(tmp_path) == ["teacher.run"]


def test_missing_file_fails_at_once_naming_the_url(server, tmp_path: Path) -> None:
    base, _ = server
    started = time.monotonic()
    with pytest.raises(DownloadError, match=rf"{base}/nothing.run failed: HTTP 404"):
        download(f"{base}/nothing.run", tmp_path / "nothing.run", MD5, backoff=10.0)
    assert time.monotonic() - started < 5  # no retry, no backoff
    assert names(tmp_path) == []


def test_malformed_md5_is_refused_before_any_request(server, tmp_path: Path) -> None:
    base, resources = server
    with pytest.raises(DownloadError, match=r"configured MD5 'abc' is not 32 hex digits"):
        download(f"{base}/good.bin", tmp_path / "good.bin", "abc")
    assert resources["/good.bin"].requests == []


# --------------------------------------------------------------------------- transient failures


def test_cut_connection_is_resumed_with_a_range_request(server, tmp_path, caplog) -> None:
    base, resources = server
    target = tmp_path / "truncated.bin"
    with caplog.at_level(logging.INFO, logger="rank_distillm.data.download"):
        download(f"{base}/truncated.bin", target, PAYLOAD_MD5, **FAST)
    assert target.read_bytes() == PAYLOAD
    assert names(tmp_path) == ["truncated.bin"]
    assert [r["range"] for r in resources["/truncated.bin"].requests] == [None, f"bytes={CUT}-"]
    [retry] = retries(caplog)
    assert f"the connection closed after {CUT} of {len(PAYLOAD)} bytes" in retry
    assert f"resuming at byte {CUT}" in caplog.text


def test_connection_reset_is_retried(server, tmp_path, caplog) -> None:
    base, resources = server
    target = tmp_path / "reset.bin"
    with caplog.at_level(logging.INFO, logger="rank_distillm.data.download"):
        download(f"{base}/reset.bin", target, PAYLOAD_MD5, **FAST)
    assert target.read_bytes() == PAYLOAD
    assert len(resources["/reset.bin"].requests) == 2
    [retry] = retries(caplog)
    assert "ConnectionResetError" in retry or "connection closed after" in retry


def test_503_twice_then_success(server, tmp_path, caplog) -> None:
    base, resources = server
    target = tmp_path / "flaky.bin"
    with caplog.at_level(logging.INFO, logger="rank_distillm.data.download"):
        download(f"{base}/flaky.bin", target, PAYLOAD_MD5, **FAST)
    assert target.read_bytes() == PAYLOAD
    assert len(resources["/flaky.bin"].requests) == 3
    messages = retries(caplog)
    assert len(messages) == 2
    assert all("HTTP 503" in m for m in messages)
    assert "attempt 1 of 5" in messages[0] and "attempt 2 of 5" in messages[1]


def test_server_without_ranges_restarts_from_zero(server, tmp_path, caplog) -> None:
    base, resources = server
    target = tmp_path / "norange.bin"
    with caplog.at_level(logging.INFO, logger="rank_distillm.data.download"):
        download(f"{base}/norange.bin", target, PAYLOAD_MD5, **FAST)
    assert target.read_bytes() == PAYLOAD  # not the first 70,000 bytes twice
    assert [r["range"] for r in resources["/norange.bin"].requests] == [None, f"bytes={CUT}-"]
    assert "the server sent the whole file; starting again" in caplog.text


def test_timeout_is_retried(server, tmp_path: Path, caplog) -> None:
    base, resources = server
    target = tmp_path / "slow.bin"
    with caplog.at_level(logging.INFO, logger="rank_distillm.data.download"):
        download(f"{base}/slow.bin", target, PAYLOAD_MD5, backoff=0.001, timeout=0.5)
    assert target.read_bytes() == PAYLOAD
    assert len(resources["/slow.bin"].requests) >= 2
    assert "TimeoutError: timed out" in retries(caplog)[0]


def test_backoff_doubles_honours_retry_after_and_is_capped(server, tmp_path, monkeypatch) -> None:
    base, resources = server
    resources["/flaky.bin"].fail_first = (503, 429, 503, 502)
    resources["/flaky.bin"].retry_after = "3"
    waits: list[float] = []
    monkeypatch.setattr(download_module.time, "sleep", waits.append)
    download(f"{base}/flaky.bin", tmp_path / "f.bin", PAYLOAD_MD5, backoff=1.0, max_backoff=5.0)
    # 1, 2, 4 and 8 s of backoff; Retry-After 3 s lengthens the first two; 8 is capped at 5.
    assert waits == [3.0, 3.0, 4.0, 5.0]


def test_persistent_503_gives_up_after_the_attempts(server, tmp_path: Path) -> None:
    base, resources = server
    resources["/flaky.bin"].fail_first = (503,) * 10
    with pytest.raises(DownloadError) as error:
        download(f"{base}/flaky.bin", tmp_path / "f.bin", PAYLOAD_MD5, attempts=3, **FAST)
    assert str(error.value) == (
        f"{tmp_path / 'f.bin'}: downloading {base}/flaky.bin failed 3 times, last: HTTP 503 "
        "Service Unavailable"
    )
    assert len(resources["/flaky.bin"].requests) == 3
    assert not (tmp_path / "f.bin").exists()


# --------------------------------------------------------------------------- a rerun resumes


def test_rerun_resumes_the_partial_file_of_a_failed_download(server, tmp_path: Path) -> None:
    base, resources = server
    target = tmp_path / "truncated.bin"
    with pytest.raises(DownloadError, match=f"the {CUT} bytes fetched so far are kept"):
        download(f"{base}/truncated.bin", target, PAYLOAD_MD5, attempts=1, **FAST)
    assert names(tmp_path) == ["truncated.bin.part", "truncated.bin.part.json"]
    assert (tmp_path / "truncated.bin.part").read_bytes() == PAYLOAD[:CUT]

    download(f"{base}/truncated.bin", target, PAYLOAD_MD5, **FAST)  # the job's rerun
    assert target.read_bytes() == PAYLOAD
    assert names(tmp_path) == ["truncated.bin"]
    assert [r["range"] for r in resources["/truncated.bin"].requests] == [None, f"bytes={CUT}-"]


def test_partial_file_of_another_url_or_md5_is_not_resumed(server, tmp_path: Path) -> None:
    base, resources = server
    target = tmp_path / "good.bin"
    for record in ({"url": f"{base}/elsewhere.bin", "md5": PAYLOAD_MD5}, {"md5": "0" * 32}):
        (tmp_path / "good.bin.part").write_bytes(b"junk" * 100)
        (tmp_path / "good.bin.part.json").write_text(
            json.dumps({"url": f"{base}/good.bin"} | record)
        )
        download(f"{base}/good.bin", target, PAYLOAD_MD5, **FAST)
        assert target.read_bytes() == PAYLOAD
        assert names(tmp_path) == ["good.bin"]
        target.unlink()
    assert [r["range"] for r in resources["/good.bin"].requests] == [None, None]


def test_partial_file_of_an_older_version_is_replaced(server, tmp_path: Path) -> None:
    base, resources = server
    target = tmp_path / "versioned.bin"
    (tmp_path / "versioned.bin.part").write_bytes(b"old version" * 100)
    record = {"url": f"{base}/versioned.bin", "md5": PAYLOAD_MD5, "validator": '"v1"'}
    (tmp_path / "versioned.bin.part.json").write_text(json.dumps(record))
    download(f"{base}/versioned.bin", target, PAYLOAD_MD5, **FAST)
    assert target.read_bytes() == PAYLOAD
    assert resources["/versioned.bin"].requests == [{"range": "bytes=1100-", "if_range": '"v1"'}]


def test_complete_partial_file_is_verified_without_downloading_again(server, tmp_path) -> None:
    base, resources = server
    target = tmp_path / "good.bin"
    (tmp_path / "good.bin.part").write_bytes(PAYLOAD)  # killed between the last byte and the MD5
    record = {"url": f"{base}/good.bin", "md5": PAYLOAD_MD5, "validator": None}
    (tmp_path / "good.bin.part.json").write_text(json.dumps(record))
    download(f"{base}/good.bin", target, PAYLOAD_MD5, **FAST)
    assert target.read_bytes() == PAYLOAD
    assert names(tmp_path) == ["good.bin"]
    assert [r["range"] for r in resources["/good.bin"].requests] == [f"bytes={len(PAYLOAD)}-"]


# --------------------------------------------------------------------------- no published MD5


def test_first_download_records_its_md5_and_later_ones_are_checked(server, tmp_path) -> None:
    """No MD5 published: the first download's is recorded (md5sum format); a later
    download of changed bytes fails against it and keeps nothing."""
    base, resources = server
    target, record = tmp_path / "good.bin", tmp_path / "checksums" / "good.bin.md5"
    assert download_module.fetch(f"{base}/good.bin", target, None, record, **FAST) == PAYLOAD_MD5
    assert record.read_text() == f"{PAYLOAD_MD5}  {target}\n"
    target.unlink()
    resources["/good.bin"] = Resource(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(DownloadError, match=f"does not match the configured {PAYLOAD_MD5}"):
        download_module.fetch(f"{base}/good.bin", target, None, record, **FAST)
    assert not target.exists()
    assert download_module.read_checksum_file(record) == PAYLOAD_MD5  # unchanged


def test_a_published_md5_wins_over_a_recorded_one(server, tmp_path: Path) -> None:
    base, _ = server
    record = tmp_path / "good.bin.md5"
    record.write_text(f"{'0' * 32}  good.bin\n")
    download_module.fetch(f"{base}/good.bin", tmp_path / "good.bin", PAYLOAD_MD5, record, **FAST)
    assert record.read_text().startswith("0" * 32)  # not rewritten


def test_malformed_checksum_file_names_itself(tmp_path: Path) -> None:
    record = tmp_path / "x.md5"
    record.write_text("not a checksum\n")
    with pytest.raises(DownloadError, match="x.md5: expected a line"):
        download_module.read_checksum_file(record)


# --------------------------------------------------------------------------- the workflow rule


def test_workflow_downloads_a_configured_teacher_run(server, tmp_path: Path) -> None:
    """`downloads` + `train_run: resources/<name>` fetch the file on demand."""
    base, _ = server
    workdir = copy_workflow(tmp_path / "workflow")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["downloads"] = {"teacher.run": {"url": f"{base}/teacher.run", "md5": MD5}}
    teacher = config["teachers"]["simulated-teacher"]
    del teacher["simulated"]
    teacher["train_run"] = "resources/teacher.run"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "1", "resources/teacher.run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (workdir / "resources" / "teacher.run").read_bytes() == TEACHER_RUN
    assert "MD5 verified" in (workdir / "resources" / "logs" / "teacher.run.log").read_text()
    table = "results/demo/training/teachers/simulated-teacher.2000x30.parquet"
    plan = snakemake(workdir, "--dry-run", table)
    assert "rule download" not in plan.stdout  # already there
    assert "resources/teacher.run" in plan.stdout
