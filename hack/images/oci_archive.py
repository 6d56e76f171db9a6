"""Write OCI image layers and image archives from plain directories, for `make images` (hack/images.sh).

Why not buildah: with its vfs storage driver every step copies the whole root filesystem and every push
recompresses every layer, so a one-line change in operator/ cost 3-4 minutes on two cores. Here each layer
is compressed once, cached by content, and an image is a few JSON documents around cached blobs: seconds.

  oci_archive.py layer DIR OUT [--without LIST]
                                      DIR's files as a layer: OUT.tar.gz and OUT.json (digest, diff_id, size),
                                      less the paths LIST names (./path a line: slim_rootfs.py list)
  oci_archive.py image ARCHIVE NAME [--layer OUT.json]... [--env K=V]... [--cmd JSON] [--entrypoint JSON]
                 [--user U] [--workdir W] [--label K=V]...
                                      an OCI image archive (oci-layout, index.json, blobs/) that
                                      `ctr images import` loads as NAME
  oci_archive.py config [--env K=V]... [...]   the image config those options make, as JSON on stdout

DIR is an overlay upper directory that only adds files (a deletion stops the build: see refuse_whiteouts).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def refuse_whiteouts(root: Path) -> None:
    """Stop if the layer under ``root`` deletes or replaces files of the layers below it.

    The recipes only add files; a deletion would need the overlay whiteout turned into an OCI one, and the
    layer directory is also the lower layer of the next build step, where that conversion would break it.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in filenames:
            st = (here / name).lstat()
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                raise SystemExit(f"{here / name}: the layer deletes a file of the layer below (unsupported)")
        for name in dirnames:
            try:
                opaque = os.getxattr(here / name, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
            except OSError:
                opaque = False
            if opaque:
                raise SystemExit(
                    f"{here / name}: the layer replaces a directory of the layer below (unsupported)"
                )


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``target``."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        self.size += len(view)
        self.target.write(view)
        return len(view)


def make_layer(directory: Path, out: Path, without: Path | None = None) -> dict[str, Any]:
    """Compress ``directory`` into ``out``.tar.gz (GNU tar keeps owners, modes, links and times).

    ``without``: a file of ``./path`` lines left out (each exactly: file names such as ``[`` are no patterns).
    """
    refuse_whiteouts(directory)
    excluded = ["--anchored", "--no-wildcards", f"--exclude-from={without}"] if without else []
    blob = out.with_name(out.name + ".tar.gz")
    tmp = blob.with_name(blob.name + ".tmp")
    blob.parent.mkdir(parents=True, exist_ok=True)
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--sort=name", *excluded, "-C", str(directory), "-cf", "-", "."],
        stdout=subprocess.PIPE,
    )
    assert tar.stdout is not None
    with tmp.open("wb") as raw:
        compressed = _Hashing(raw)
        # Level 1: the layers are read once locally; speed matters more than a few percent of size.
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0) as gz:
            uncompressed = _Hashing(gz)
            while chunk := tar.stdout.read(CHUNK):
                uncompressed.write(chunk)
    if tar.wait() != 0:
        tmp.unlink()
        raise SystemExit(f"tar of {directory} failed")
    tmp.rename(blob)
    info = {
        "blob": str(blob),
        "digest": f"sha256:{compressed.sha.hexdigest()}",
        "diff_id": f"sha256:{uncompressed.sha.hexdigest()}",
        "size": compressed.size,
    }
    out.with_name(out.name + ".json").write_text(json.dumps(info))
    return info


def _json_blob(obj: Any) -> tuple[bytes, str]:
    data = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    return data, f"sha256:{hashlib.sha256(data).hexdigest()}"


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    member.mode = 0o644
    archive.addfile(member, io.BytesIO(data))


def make_image(
    archive_path: Path,
    name: str,
    layers: list[dict[str, Any]],
    config: dict[str, Any],
) -> None:
    """Write an OCI image archive holding ``layers`` (bottom first) with the runtime ``config``."""
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
    }
    config_data, config_digest = _json_blob(image_config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_data),
        },
        "layers": [
            {"mediaType": LAYER_MEDIA_TYPE, "digest": layer["digest"], "size": layer["size"]}
            for layer in layers
        ],
    }
    manifest_data, manifest_digest = _json_blob(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_data),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
        ],
    }
    tmp = archive_path.with_name(archive_path.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as archive:
        _add_bytes(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(archive, "index.json", json.dumps(index).encode())
        for data, digest in ((config_data, config_digest), (manifest_data, manifest_digest)):
            _add_bytes(archive, f"blobs/sha256/{digest.removeprefix('sha256:')}", data)
        for layer in layers:
            archive.add(layer["blob"], arcname=f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}")
    tmp.rename(archive_path)


def _pairs(values: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    layer = sub.add_parser("layer")
    layer.add_argument("directory", type=Path)
    layer.add_argument("out", type=Path)
    layer.add_argument("--without", type=Path)
    image = sub.add_parser("image")
    image.add_argument("archive", type=Path)
    image.add_argument("name")
    image.add_argument("--layer", action="append", default=[], type=Path)
    config_only = sub.add_parser("config")
    for command in (image, config_only):
        command.add_argument("--env", action="append", default=[])
        command.add_argument("--label", action="append", default=[])
        command.add_argument("--cmd", type=json.loads)
        command.add_argument("--entrypoint", type=json.loads)
        command.add_argument("--user")
        command.add_argument("--workdir")
    args = parser.parse_args(argv)
    if args.command == "layer":
        make_layer(args.directory, args.out, args.without)
        return
    config: dict[str, Any] = {"Env": args.env}
    for key, value in (
        ("Cmd", args.cmd),
        ("Entrypoint", args.entrypoint),
        ("User", args.user),
        ("WorkingDir", args.workdir),
    ):
        if value is not None:
            config[key] = value
    if args.label:
        config["Labels"] = _pairs(args.label)
    if args.command == "config":
        print(json.dumps(config, indent=2))
        return
    layers = [json.loads(path.read_text()) for path in args.layer]
    make_image(args.archive, args.name, layers, config)


if __name__ == "__main__":
    main(sys.argv[1:])
