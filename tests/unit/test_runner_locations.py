"""Locations (paths, pvc://, http(s) with sha256, s3, archives), versions, and local-run path mapping."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import re
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from assay.contract import ExitCode
from assay.runner.failures import TaskFailed
from assay.runner.local import LocalRunError, localize_uri, parse_volume_mappings
from assay.runner.locations import (
    Location,
    LocationError,
    is_archive,
    local_path,
    parse_location,
    resolve_version,
    unpack_archive,
)
from assay.runner.main import resolve_output_dir


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/x.jsonl", Location("file", "/data/x.jsonl")),
        ("data/x.jsonl", Location("file", "data/x.jsonl")),
        ("file:///data/my%20x.jsonl", Location("file", "/data/my x.jsonl")),
        ("pvc://claim/a/b", Location("pvc", "pvc://claim/a/b")),
        ("https://h/x.tgz#sha256=" + "ab" * 32, Location("https", "https://h/x.tgz", "ab" * 32)),
        ("s3://bucket/key", Location("s3", "bucket/key")),
    ],
)
def test_parse_location(uri: str, expected: Location) -> None:
    assert parse_location(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "empty"),
        ("ftp://host/x", "unknown scheme 'ftp'"),
        ("pvc:///path", "no claim name"),
        ("https://h/x#md5=abc", "sha256=<64 hex digits>"),
        ("http://h/x.tgz", "plain http:// needs a #sha256="),
        ("s3:///key", "no bucket"),
    ],
)
def test_bad_locations_say_what_to_write(uri: str, message: str) -> None:
    with pytest.raises(LocationError, match=message):
        parse_location(uri)


def test_pvc_locations_are_under_the_pvc_root() -> None:
    assert local_path("pvc://models/digits/v1", pvc_root="/assay/volumes") == Path(
        "/assay/volumes/models/digits/v1"
    )


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[method-assign,assignment]  # quiet test output
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_http_download_checks_the_sha256(http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, root = http_root
    (root / "data.jsonl").write_text('{"x": 1}\n')
    digest = hashlib.sha256(b'{"x": 1}\n').hexdigest()
    path = local_path(f"{base}/data.jsonl#sha256={digest}", cache=tmp_path / "cache")
    assert path.read_text() == '{"x": 1}\n'
    with pytest.raises(LocationError, match="expected " + "0" * 64):
        local_path(f"{base}/data.jsonl#sha256={'0' * 64}", cache=tmp_path / "other-cache")
    assert not list((tmp_path / "other-cache").rglob("data.jsonl"))  # nothing half-trusted left behind
    with pytest.raises(LocationError, match="cannot download"):
        local_path(f"{base}/missing.jsonl#sha256={digest}", cache=tmp_path / "cache")


def test_s3_without_boto3_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as in the runner image: boto3 is not installed
    with pytest.raises(LocationError, match=r"needs boto3.*pip install boto3"):
        local_path("s3://bucket/model/", cache=tmp_path)


def test_archives_unpack_into_their_single_top_directory(tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "handler.py").write_text("x = 1\n")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(source, arcname="model")
    assert is_archive(tmp_path / "model.tar.gz")
    unpacked = unpack_archive(tmp_path / "model.tar.gz", cache=tmp_path / "cache")
    assert (unpacked / "handler.py").read_text() == "x = 1\n"
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as archive:
        archive.write(source / "handler.py", "handler.py")
    assert (unpack_archive(tmp_path / "model.zip", cache=tmp_path / "cache") / "handler.py").exists()


@pytest.mark.parametrize("name", ["../../escaped.py", "/tmp/absolute.py", "model/../../escaped.py"])
def test_zip_entries_that_escape_the_archive_are_refused(tmp_path: Path, name: str) -> None:
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr(name, "x = 1\n")
    with pytest.raises(LocationError, match=f"refusing to unpack {re.escape(repr(name))}.*outside"):
        unpack_archive(tmp_path / "evil.zip", cache=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("unpacked-*"))  # nothing half-unpacked is taken later


def _tar_entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    entry = tarfile.TarInfo(name)
    entry.type, entry.linkname = kind, link
    data = b"" if link else b"x = 1\n"
    entry.size = len(data)
    return entry, data


ESCAPING_TAR_ENTRIES = {
    "parent": [_tar_entry("../../escaped.py")],
    "absolute": [_tar_entry("/tmp/absolute.py")],
    "symlink-absolute": [_tar_entry("model/link", tarfile.SYMTYPE, "/etc/passwd")],
    "symlink-parent": [_tar_entry("model/link", tarfile.SYMTYPE, "../../outside")],
    "hardlink-out": [_tar_entry("model/link", tarfile.LNKTYPE, "../outside")],
    # A link inside, then a file written through it: each alone looks harmless.
    "through-a-symlink": [
        _tar_entry("model/dir", tarfile.SYMTYPE, ".."),
        _tar_entry("model/dir/../../escaped.py"),
    ],
}


@pytest.mark.parametrize("case", ESCAPING_TAR_ENTRIES)
@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_tar_entries_that_escape_the_archive_are_refused(tmp_path: Path, case: str, suffix: str) -> None:
    path = tmp_path / f"evil{suffix}"
    with tarfile.open(path, "w:gz" if suffix == ".tar.gz" else "w") as archive:
        archive.addfile(*_tar_entry("model/handler.py")[:1], io.BytesIO(b"x = 1\n"))
        for entry, data in ESCAPING_TAR_ENTRIES[case]:
            archive.addfile(entry, io.BytesIO(data))
    with pytest.raises(LocationError, match=r"refusing to unpack .*outside"):
        unpack_archive(path, cache=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("unpacked-*"))
    assert not (tmp_path / "escaped.py").exists() and not (tmp_path / "outside").exists()


def test_links_inside_a_tar_archive_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "model.tar"
    with tarfile.open(path, "w") as archive:
        archive.addfile(*_tar_entry("model/weights/v1.bin")[:1], io.BytesIO(b"x = 1\n"))
        archive.addfile(_tar_entry("model/weights/latest.bin", tarfile.SYMTYPE, "v1.bin")[0])
    unpacked = unpack_archive(path, cache=tmp_path / "cache")
    assert (unpacked / "weights" / "latest.bin").read_text() == "x = 1\n"


def test_versions_resolve_to_a_sub_directory_a_manifest_or_the_name(tmp_path: Path) -> None:
    (tmp_path / "model" / "v1").mkdir(parents=True)
    assert resolve_version(tmp_path / "model", "v1") == tmp_path / "model" / "v1"
    assert resolve_version(tmp_path / "model", "") == tmp_path / "model"
    assert resolve_version(tmp_path / "model" / "v1", "v1") == tmp_path / "model" / "v1"  # named after it
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "assay.json").write_text('{"version": "v2"}')
    assert resolve_version(tmp_path / "flat", "v2") == tmp_path / "flat"
    with pytest.raises(LocationError, match=r"holds version 'v2'.*not 'v3'"):
        resolve_version(tmp_path / "flat", "v3")
    with pytest.raises(LocationError, match="version 'v9' not found"):
        resolve_version(tmp_path / "model", "v9")


def test_local_runs_map_claims_and_relative_files(tmp_path: Path) -> None:
    volumes = parse_volume_mappings(
        ["examples=..", "results=/tmp/r,models=m"], base_dir=tmp_path / "manifests"
    )
    assert volumes == {
        "examples": tmp_path.resolve(),
        "results": Path("/tmp/r"),
        "models": (tmp_path / "manifests" / "m").resolve(),
    }
    assert localize_uri("pvc://examples/digits/model", volumes, tmp_path) == str(
        tmp_path.resolve() / "digits/model"
    )
    assert localize_uri("file://data/x.jsonl", volumes, tmp_path) == str(tmp_path.resolve() / "data/x.jsonl")
    assert localize_uri("https://h/x", volumes, tmp_path) == "https://h/x"
    with pytest.raises(LocalRunError, match="--volume other=DIR"):
        localize_uri("pvc://other/x", volumes, tmp_path)
    with pytest.raises(LocalRunError, match="claim=DIR"):
        parse_volume_mappings(["no-equals-sign"], tmp_path)


@pytest.mark.parametrize("uri", ["http://h/out", "https://h/out", "s3://bucket/out/"])
def test_remote_outputs_are_refused_for_what_they_are(uri: str) -> None:
    expected = r"outputs must be a path, file:// or pvc:// location, not \w+://"
    with pytest.raises(TaskFailed, match=expected) as refused:
        resolve_output_dir(uri, "/assay/volumes")
    assert refused.value.code is ExitCode.OUTPUT_NOT_WRITABLE


def test_tasks_sharing_an_output_do_not_share_a_write_check(tmp_path: Path) -> None:
    # Task pods sharing a volume all run as PID 1 of their own namespace: a probe named after the pid was
    # written and unlinked by two tasks at once, and one of them failed with OutputNotWritable.
    (tmp_path / f".assay-write-check-{os.getpid()}").mkdir()  # another task's probe, of the same name
    assert resolve_output_dir(str(tmp_path), "/assay/volumes") == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [f".assay-write-check-{os.getpid()}"]  # ours is gone
