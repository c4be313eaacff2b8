"""Downloads with MD5 checks, against a local HTTP server (no network needed)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rank_distillm.download import DownloadError, download
from tests.workflow_runner import copy_workflow, snakemake

TEACHER_RUN = b"1002990 Q0 3227618 1 100 rank\n1002990 Q0 17 2 99 rank\n"
MD5 = hashlib.md5(TEACHER_RUN).hexdigest()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Serves tmp_path/served on 127.0.0.1; yields the base URL."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    (served / "teacher.run").write_bytes(TEACHER_RUN)
    handler = functools.partial(QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join(timeout=5)


def test_download_verifies_and_keeps_the_file(server: str, tmp_path: Path) -> None:
    target = tmp_path / "resources" / "teacher.run"
    download(f"{server}/teacher.run", target, MD5.upper())
    assert target.read_bytes() == TEACHER_RUN
    assert [p.name for p in target.parent.iterdir()] == ["teacher.run"]


def test_checksum_mismatch_keeps_nothing(server: str, tmp_path: Path) -> None:
    target = tmp_path / "teacher.run"
    target.write_text("an older, complete file\n")
    with pytest.raises(DownloadError) as error:
        download(f"{server}/teacher.run", target, "0" * 32)
    message = str(error.value)
    assert str(target) in message and MD5 in message and "0" * 32 in message
    assert target.read_text() == "an older, complete file\n"  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["teacher.run"]


def test_missing_file_names_the_url(server: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=rf"{server}/nothing.run failed: HTTP Error 404"):
        download(f"{server}/nothing.run", tmp_path / "nothing.run", MD5)
    assert not (tmp_path / "nothing.run").exists()


def test_workflow_downloads_a_configured_teacher_run(server: str, tmp_path: Path) -> None:
    """`downloads` + `train_run: resources/<name>` fetch the file on demand."""
    workdir = copy_workflow(tmp_path / "workflow")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["downloads"] = {"teacher.run": {"url": f"{server}/teacher.run", "md5": MD5}}
    teacher = config["teachers"]["simulated-teacher"]
    del teacher["simulated"]
    teacher["train_run"] = "resources/teacher.run"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "1", "resources/teacher.run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (workdir / "resources" / "teacher.run").read_bytes() == TEACHER_RUN
    assert "MD5 verified" in (workdir / "resources" / "logs" / "teacher.run.log").read_text()
    table = "results/demo/training/teachers/simulated-teacher.1000x30.parquet"
    plan = snakemake(workdir, "--dry-run", table)
    assert "rule download" not in plan.stdout  # already there
    assert "resources/teacher.run" in plan.stdout
