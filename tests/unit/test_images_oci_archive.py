"""hack/images/oci_archive.py: layers and image archives for containerd, checked digest by digest.

The real import into containerd is covered by the real-node tests; here the archive's own consistency: every
digest names the bytes it points at, the config lists each layer's uncompressed digest, and a layer that would
delete files of the one below is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hack_images import load

REPO_ROOT = Path(__file__).resolve().parents[2]


oci_archive = load("oci_archive")


def _sha(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _layer_dir(root: Path) -> Path:
    (root / "opt" / "assay" / "bin").mkdir(parents=True)
    (root / "opt" / "assay" / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    (root / "opt" / "assay" / "bin" / "tool").chmod(0o755)
    (root / "opt" / "assay" / "link").symlink_to("bin/tool")
    return root


def test_a_layer_records_the_digests_of_its_compressed_and_uncompressed_bytes(tmp_path: Path) -> None:
    info = oci_archive.make_layer(_layer_dir(tmp_path / "layer"), tmp_path / "blobs" / "x")
    blob = Path(info["blob"]).read_bytes()
    assert info["digest"] == _sha(blob)
    assert info["size"] == len(blob)
    assert info["diff_id"] == _sha(gzip.decompress(blob))
    assert json.loads((tmp_path / "blobs" / "x.json").read_text()) == info

    with tarfile.open(info["blob"]) as layer:
        members = {m.name: m for m in layer.getmembers()}
    assert members["./opt/assay/bin/tool"].mode & 0o777 == 0o755
    assert members["./opt/assay/link"].issym() and members["./opt/assay/link"].linkname == "bin/tool"


def test_an_image_archive_is_a_consistent_oci_layout(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir()
    layer = oci_archive.make_layer(_layer_dir(tmp_path / "layer"), tmp_path / "blobs" / "x")
    archive = tmp_path / "image.oci.tar"
    config = {"Env": ["PATH=/opt/assay/bin"], "Cmd": ["tool"], "User": "65532:65532"}
    oci_archive.make_image(archive, "assay.local/runner:abc", [layer], config)

    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert _sha(data) == "sha256:" + name.removeprefix("blobs/sha256/"), name

    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "assay.local/runner:abc"
    manifest: dict[str, Any] = json.loads(files["blobs/sha256/" + entry["digest"].removeprefix("sha256:")])
    assert entry["size"] == len(files["blobs/sha256/" + entry["digest"].removeprefix("sha256:")])
    assert [entry["digest"] for entry in manifest["layers"]] == [layer["digest"]]
    image_config = json.loads(files["blobs/sha256/" + manifest["config"]["digest"].removeprefix("sha256:")])
    assert image_config["rootfs"] == {"type": "layers", "diff_ids": [layer["diff_id"]]}
    assert image_config["config"] == config
    assert image_config["os"] == "linux"


@pytest.mark.skipif(
    os.geteuid() != 0, reason="making a 0/0 character device (an overlay whiteout) needs root"
)
def test_a_layer_that_deletes_a_lower_file_is_refused(tmp_path: Path) -> None:
    root = _layer_dir(tmp_path / "layer")
    os.mknod(root / "opt" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))
    with pytest.raises(SystemExit, match="deletes a file"):
        oci_archive.make_layer(root, tmp_path / "x")


def test_the_image_installs_exactly_the_package_dependencies_and_its_extras() -> None:
    script = REPO_ROOT / "hack" / "images" / "dependencies.py"
    listed = subprocess.run(
        [sys.executable, str(script), "pyproject.toml", "runner,examples"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    names = {re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower() for line in listed}
    assert {"kopf", "pydantic", "pyarrow", "scikit-learn"} <= names
    assert "assay" not in names and "pytest" not in names
