"""Downloads of http(s):// locations: size cap, redirects, plain http only with a checksum, a private cache,
and cached files re-validated. Real servers on 127.0.0.1 (HTTPS with a certificate made for the test)."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.server
import io
import os
import ssl
import tarfile
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from assay.controller.admission.tls import build_self_signed
from assay.runner.locations import LocationError, download_dir, local_path, unpack_archive


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from a directory, plus ``/redirect/<quoted URL>`` and ``/endless`` (no Content-Length)."""

    requests: list[tuple[str, int]]

    def do_GET(self) -> None:
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(self.path.removeprefix("/redirect/")))
            self.end_headers()
            return
        if self.path.startswith("/endless"):
            self.send_response(200)
            self.end_headers()  # HTTP/1.0 without Content-Length: the body ends when the connection does
            with contextlib.suppress(OSError):
                for _ in range(64):
                    self.wfile.write(b"x" * 65536)
            return
        super().do_GET()

    def send_response(self, code: int, message: str | None = None) -> None:
        self.requests.append((self.path, code))
        super().send_response(code, message)

    def log_message(self, *args: object) -> None:
        pass  # quiet test output


@contextlib.contextmanager
def _serve(root: Path, tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host = "localhost" if tls is not None else "127.0.0.1"
        yield f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    return root


@pytest.fixture
def plain(www: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    with _serve(www) as served:
        yield served


@pytest.fixture
def secure(www: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list]]:
    """An HTTPS server for ``localhost`` whose certificate this process trusts (SSL_CERT_FILE)."""
    certificate = build_self_signed(["localhost"], datetime.datetime.now(datetime.UTC))
    cert, key = certificate.write_to(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with _serve(www, tls) as served:
        yield served


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default download directory is computed under this test's own temporary directory."""
    monkeypatch.delenv("ASSAY_DOWNLOAD_DIR", raising=False)
    monkeypatch.delenv("ASSAY_DOWNLOAD_MAX_BYTES", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path / "tmp"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ONE_SHA = _sha(b'{"x": 1}\n')


def test_https_downloads_and_https_redirects_work(secure: tuple[str, list], www: Path) -> None:
    base, _ = secure
    (www / "data.jsonl").write_text('{"x": 1}\n')
    assert local_path(f"{base}/data.jsonl").read_text() == '{"x": 1}\n'
    moved = urllib.parse.quote(f"{base}/data.jsonl", safe="")
    assert local_path(f"{base}/redirect/{moved}").read_text() == '{"x": 1}\n'


def test_an_https_to_http_redirect_is_refused(
    secure: tuple[str, list], plain: tuple[str, list], www: Path
) -> None:
    (www / "data.jsonl").write_text('{"x": 1}\n')
    downgraded = urllib.parse.quote(f"{plain[0]}/data.jsonl", safe="")
    with pytest.raises(LocationError, match=r"redirected from https:// to http://.*refused"):
        local_path(f"{secure[0]}/redirect/{downgraded}")
    assert plain[1] == []  # the plain server was never asked


def test_plain_http_needs_a_checksum(plain: tuple[str, list], www: Path) -> None:
    (www / "data.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(LocationError, match=r"plain http:// needs a #sha256=<64 hex digits> fragment"):
        local_path(f"{plain[0]}/data.jsonl")
    assert plain[1] == []
    assert local_path(f"{plain[0]}/data.jsonl#sha256={ONE_SHA}").read_text() == '{"x": 1}\n'


def test_downloads_over_the_size_cap_are_refused(
    plain: tuple[str, list], www: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_DOWNLOAD_MAX_BYTES", "1000")
    (www / "big.bin").write_bytes(b"x" * 1001)
    over = r"over the limit of 1000 bytes \(ASSAY_DOWNLOAD_MAX_BYTES\)"
    with pytest.raises(LocationError, match="is 1001 bytes, " + over):
        local_path(f"{plain[0]}/big.bin#sha256={_sha(b'x' * 1001)}")
    # No Content-Length to refuse up front: stopped once the limit is passed, not at the end of the stream.
    with pytest.raises(LocationError, match="passed 1000 bytes, " + over):
        local_path(f"{plain[0]}/endless#sha256={'0' * 64}")
    assert not [p for p in download_dir().rglob("*") if p.is_file()]  # no partial file left behind
    (www / "small.bin").write_bytes(b"x" * 1000)
    assert local_path(f"{plain[0]}/small.bin#sha256={_sha(b'x' * 1000)}").stat().st_size == 1000
    monkeypatch.setenv("ASSAY_DOWNLOAD_MAX_BYTES", "lots")
    with pytest.raises(LocationError, match="ASSAY_DOWNLOAD_MAX_BYTES must be a number of bytes"):
        local_path(f"{plain[0]}/small.bin#sha256={_sha(b'x' * 1000)}")


def test_archives_over_the_size_cap_are_not_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSAY_DOWNLOAD_MAX_BYTES", "1000")
    with tarfile.open(tmp_path / "bomb.tar.gz", "w:gz") as archive:
        entry = tarfile.TarInfo("model/zeros.bin")
        entry.size = 4000  # compresses to almost nothing
        archive.addfile(entry, io.BytesIO(b"\0" * 4000))
    with pytest.raises(LocationError, match=r"unpacks to 4000 bytes, over the limit of 1000 bytes"):
        unpack_archive(tmp_path / "bomb.tar.gz")


def test_the_default_download_directory_is_private_to_this_user(
    plain: tuple[str, list], www: Path, private_tmp: Path
) -> None:
    (www / "data.jsonl").write_text('{"x": 1}\n')
    path = local_path(f"{plain[0]}/data.jsonl#sha256={ONE_SHA}")
    directory = private_tmp / f"assay-downloads-{os.getuid()}"
    assert path.is_relative_to(directory)
    assert directory.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("planted", ["open-mode", "symlink"])
def test_a_download_directory_another_user_could_write_is_refused(
    plain: tuple[str, list], www: Path, private_tmp: Path, tmp_path: Path, planted: str
) -> None:
    directory = private_tmp / f"assay-downloads-{os.getuid()}"
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    if planted == "open-mode":
        directory.mkdir()
        directory.chmod(0o777)
    else:
        directory.symlink_to(tmp_path / "elsewhere")
    (www / "data.jsonl").write_text('{"x": 1}\n')
    with pytest.raises(
        LocationError, match=f"download directory {directory}.*remove it or set ASSAY_DOWNLOAD_DIR"
    ):
        local_path(f"{plain[0]}/data.jsonl#sha256={ONE_SHA}")
    assert not list((tmp_path / "elsewhere").rglob("*"))  # nothing written through a planted link


def test_a_cached_download_without_checksum_is_revalidated(secure: tuple[str, list], www: Path) -> None:
    base, requests = secure
    (www / "data.jsonl").write_text('{"x": 1}\n')
    first = local_path(f"{base}/data.jsonl")
    inode = first.stat().st_ino
    assert local_path(f"{base}/data.jsonl") == first and first.stat().st_ino == inode  # unchanged: kept
    assert requests == [("/data.jsonl", 200), ("/data.jsonl", 304)]
    (www / "data.jsonl").write_text('{"x": 2}\n')
    later = (www / "data.jsonl").stat().st_mtime + 10  # Last-Modified has whole seconds
    os.utime(www / "data.jsonl", (later, later))
    assert local_path(f"{base}/data.jsonl").read_text() == '{"x": 2}\n'  # changed: fetched again
