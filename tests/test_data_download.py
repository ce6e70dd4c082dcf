"""Downloads end to end against a local HTTP server: checksums, resume with Range, extraction, layout."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import data_fixtures as fx  # noqa: E402

import uiad_lite.data.download as dl  # noqa: E402
from uiad_lite.data import registry  # noqa: E402
from uiad_lite.data.registry import Archive  # noqa: E402


class ArchiveServer:
    """Serves one payload at /<name>; honours Range; can drop the connection half-way N times."""

    def __init__(self, payload: bytes, name: str, drops: int = 0) -> None:
        self.payload, self.name, self.drops = payload, name, drops
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server API)
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if self.path != f"/{server.name}":
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}"
                    )
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if server.drops > 0:
                    server.drops -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ArchiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def btad_zip(tmp_path: Path) -> bytes:
    """A BTAD-layout dataset zipped the way the official archive nests it."""
    source = tmp_path / "source" / "BTech_Dataset_transformed"
    fx.write_btad(source, category="01")
    # incompressible bytes so the transfer spans many reads and an interruption keeps some of them
    (source / "README.bin").write_bytes(np.random.default_rng(0).bytes(300_000))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(source.parent.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(source.parent).as_posix(), zipfile.ZIP_STORED)
    return buffer.getvalue()


@pytest.fixture
def payload(tmp_path) -> bytes:
    return btad_zip(tmp_path)


def use_archive(monkeypatch, url: str, sha256: str | None) -> None:
    entry = registry.REGISTRY["btad"]
    patched = dataclasses.replace(entry, archives=(Archive(url=url, filename="btad.zip", sha256=sha256),))
    monkeypatch.setitem(registry.REGISTRY, "btad", patched)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith(".uiad_extracted"))


def test_download_checks_sha256_extracts_and_checks_layout(tmp_path, monkeypatch, payload):
    with ArchiveServer(payload, "btad.zip") as server:
        use_archive(monkeypatch, server.url, hashlib.sha256(payload).hexdigest())
        root = dl.download("btad", tmp_path / "btad")
        assert (root / "btad.zip").read_bytes() == payload
        assert (root / "BTech_Dataset_transformed" / "01" / "train" / "ok").is_dir()
        report = dl.verify("btad", root)
        assert report["ok"] and report["archives"][0]["ok"]
        assert report["layout"]["categories"]["01"]["anomalous"] == 2
        assert "01: train 2, test 3 (2 anomalous)" in dl.format_report(report)
        dl.download("btad", root)  # second call: nothing fetched again
        assert len(server.requests) == 1


def test_bad_checksum_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch, payload):
    root = tmp_path / "btad"
    with ArchiveServer(payload, "btad.zip") as server:
        use_archive(monkeypatch, server.url, "0" * 64)
        with pytest.raises(ValueError, match="SHA-256 mismatch") as error:
            dl.download("btad", root)
    assert server.url in str(error.value)
    assert leftovers(root) == []
    assert not any(root.rglob("*.part"))


def test_interrupted_download_resumes_with_a_range_request(tmp_path, monkeypatch, payload):
    with ArchiveServer(payload, "btad.zip", drops=1) as server:
        use_archive(monkeypatch, server.url, hashlib.sha256(payload).hexdigest())
        root = dl.download("btad", tmp_path / "btad", retries=2)
    assert (root / "btad.zip").read_bytes() == payload
    first, second = server.requests
    assert first["range"] is None
    offset = int(second["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < offset <= len(payload) // 2  # resumed from what the first attempt kept


def test_interrupted_call_keeps_the_part_file_and_the_next_call_resumes(tmp_path, monkeypatch, payload):
    root = tmp_path / "btad"
    with ArchiveServer(payload, "btad.zip", drops=1) as server:
        use_archive(monkeypatch, server.url, hashlib.sha256(payload).hexdigest())
        with pytest.raises(dl.IncompleteDownload, match="resumes"):
            dl.download("btad", root, retries=0)
        assert leftovers(root) == ["btad.zip.part"]
        kept = (root / "btad.zip.part").stat().st_size
        assert 0 < kept <= len(payload) // 2
        dl.download("btad", root, retries=0)
    assert server.requests[-1]["range"] == f"bytes={kept}-"
    assert leftovers(root) == ["btad.zip"] and (root / "btad.zip").read_bytes() == payload


def test_licensed_dataset_prints_instructions_then_accepts_a_placed_archive(tmp_path, monkeypatch):
    root = tmp_path / "mvtec"
    root.mkdir()
    with pytest.raises(dl.ManualDownloadRequired, match="mvtec.com") as error:
        dl.download("mvtec_ad", root)
    assert str(root) in str(error.value) and "licence" in str(error.value)
    source = tmp_path / "source"
    fx.write_mvtec_ad(source)
    archive_path = root / "mvtec_anomaly_detection.tar.xz"
    with tarfile.open(archive_path, "w:xz") as archive:
        archive.add(source / "bottle", arcname="bottle")
    with pytest.raises(ValueError, match="SHA-256 mismatch"):  # the registry holds the real archive's hash
        dl.download("mvtec_ad", root)
    entry = registry.REGISTRY["mvtec_ad"]
    real_hash = hashlib.sha256(archive_path.read_bytes()).hexdigest()
    patched = dataclasses.replace(entry, archives=(dataclasses.replace(entry.archives[0], sha256=real_hash),))
    monkeypatch.setitem(registry.REGISTRY, "mvtec_ad", patched)
    assert dl.download("mvtec_ad", root) == root
    assert dl.verify("mvtec_ad", root)["layout"]["categories"]["bottle"]["test"] == 5


def test_verify_reports_a_broken_layout(tmp_path):
    fx.write_mvtec_ad(tmp_path)
    (tmp_path / "bottle/ground_truth/contamination/000_mask.png").unlink()
    report = dl.verify("mvtec_ad", tmp_path)
    assert not report["ok"]
    assert "000_mask.png" in report["layout"]["categories"]["bottle"]["error"]


def test_verify_command_exit_code_says_whether_the_data_is_usable(tmp_path, capsys):
    from uiad_lite import cli

    fx.write_mvtec_ad(tmp_path / "good")
    assert cli.main(["data", "verify", "mvtec_ad", "--root", str(tmp_path / "good")]) == 0
    assert ": OK" in capsys.readouterr().out
    fx.write_mvtec_ad(tmp_path / "broken")
    (tmp_path / "broken/bottle/ground_truth/contamination/000_mask.png").unlink()
    assert cli.main(["data", "verify", "mvtec_ad", "--root", str(tmp_path / "broken")]) == 1
    assert "PROBLEMS" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert cli.main(["data", "verify", "eyecandies", "--root", str(tmp_path / "empty")]) == 1
    assert "NOT CHECKED (no loader" in capsys.readouterr().out


def test_extraction_refuses_paths_outside_the_target(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../outside.txt", "nope")
    with pytest.raises(ValueError, match="outside"):
        dl.safe_extract(evil, tmp_path / "target")
    assert not (tmp_path / "outside.txt").exists()


def test_synthetic_download_generates(tmp_path):
    folder = dl.download("synthetic", tmp_path, size="tiny")
    assert folder.parent == tmp_path and (folder / "uiad_synthetic.json").is_file()
