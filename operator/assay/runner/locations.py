"""Model, dataset and output locations: from a URI to a local path.

Accepted forms:

* a plain path (``/data/digits``, ``data/digits`` relative to the working directory) or ``file:///data/digits``;
* ``pvc://claim/path`` — the claim is mounted by the operator at ``<ASSAY_PVC_ROOT>/<claim>``
  (:func:`assay.contract.pvc_local_path`);
* ``http://`` / ``https://`` — downloaded once into the download directory; a ``#sha256=<hex>`` fragment makes
  the runner check the file's digest and refuse it on mismatch;
* ``s3://bucket/key`` (a single object) or ``s3://bucket/prefix/`` (everything under it) — needs ``boto3``,
  which the runner does not install; credentials and endpoint come from boto3's usual environment variables.

A model location that is an archive (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``) is unpacked next to it.

Versions (``model.version``, ``dataset.version``) resolve by :func:`resolve_version`:

1. ``<location>/<version>/`` exists → that directory (inside an unpacked archive too);
2. else ``<location>`` (or, for a file, the directory holding it) has an ``assay.json`` manifest with a
   ``"version"`` field → it must equal the requested version;
3. else the location's own last path component equals the version (``.../mnist/v3`` for version ``v3``);
4. else the version is not there: an error naming what was looked for.

For http(s):// and s3:// locations a version is also found when it is a segment of the URL's path
(``https://host/digits/v1/test.jsonl`` for version ``v1``).

An empty version accepts the location as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from assay.contract import DEFAULT_PVC_ROOT, pvc_claim, pvc_local_path

# Where http(s) and s3 downloads (and unpacked archives) are kept; a runner-only setting.
ENV_DOWNLOAD_DIR = "ASSAY_DOWNLOAD_DIR"
DEFAULT_DOWNLOAD_DIR = Path(tempfile.gettempdir()) / "assay-downloads"
# Seconds without progress before a download is given up.
DOWNLOAD_TIMEOUT_SECONDS = 60.0
VERSION_MANIFEST = "assay.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
REMOTE_SCHEMES = ("http", "https", "s3")


class LocationError(Exception):
    """A location that cannot be found, fetched, or does not hold the requested version."""


@dataclass(frozen=True)
class Location:
    """A parsed location URI."""

    scheme: str  # "file", "pvc", "http", "https" or "s3"
    target: str  # a path for file/pvc, the URL without its fragment for http(s), "bucket/key" for s3
    sha256: str | None = None

    @property
    def is_remote(self) -> bool:
        return self.scheme in REMOTE_SCHEMES


def parse_location(uri: str) -> Location:
    """Split a location URI into its scheme and target; raises :class:`LocationError` for unknown schemes."""
    text = uri.strip()
    if not text:
        raise LocationError("the location is empty")
    if "://" not in text:
        return Location("file", text)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme == "file":
        return Location("file", urllib.parse.unquote(rest))
    if scheme == "pvc":
        if not pvc_claim(text):
            raise LocationError(f"{uri!r} has no claim name; write pvc://<claim>/<path>")
        return Location("pvc", text)
    if scheme in ("http", "https"):
        url, _, fragment = text.partition("#")
        digest = None
        if fragment:
            key, _, value = fragment.partition("=")
            if key != "sha256" or len(value) != 64 or not all(c in "0123456789abcdefABCDEF" for c in value):
                raise LocationError(f"{uri!r}: the fragment must be #sha256=<64 hex digits>, got #{fragment}")
            digest = value.lower()
        return Location(scheme, url, digest)
    if scheme == "s3":
        if not rest.split("/", 1)[0]:
            raise LocationError(f"{uri!r} has no bucket; write s3://<bucket>/<key>")
        return Location("s3", rest)
    raise LocationError(
        f"{uri!r}: unknown scheme {scheme!r}; use a path, file://, pvc://, http(s):// or s3://"
    )


def download_dir() -> Path:
    return Path(os.environ.get(ENV_DOWNLOAD_DIR) or DEFAULT_DOWNLOAD_DIR)


def local_path(uri: str, *, pvc_root: str = DEFAULT_PVC_ROOT, cache: Path | None = None) -> Path:
    """The local path of a location, downloading remote ones first (local ones may not exist)."""
    location = parse_location(uri)
    if location.scheme == "file":
        return Path(location.target)
    if location.scheme == "pvc":
        return Path(pvc_local_path(location.target, pvc_root))
    target_dir = (cache or download_dir()) / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if location.scheme == "s3":
        return _download_s3(location.target, target_dir)
    return _download_http(location, target_dir)


def _download_http(location: Location, target_dir: Path) -> Path:
    name = Path(urllib.parse.urlparse(location.target).path).name or "download"
    destination = target_dir / name
    if destination.exists() and (location.sha256 is None or _sha256_of(destination) == location.sha256):
        return destination
    target_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, partial = tempfile.mkstemp(dir=target_dir, prefix=".partial-")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(location.target, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        ):
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if location.sha256 is not None and digest.hexdigest() != location.sha256:
            raise LocationError(
                f"{location.target}: sha256 is {digest.hexdigest()}, expected {location.sha256}; "
                "the file changed or the checksum in the URI is wrong"
            )
        os.replace(partial, destination)  # atomic: a half-downloaded file is never taken for a whole one
    except (urllib.error.URLError, OSError) as exc:
        raise LocationError(f"cannot download {location.target}: {exc}") from exc
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return destination


def _download_s3(target: str, target_dir: Path) -> Path:
    try:
        import boto3  # optional: only s3:// locations need it
    except ImportError as exc:
        raise LocationError(
            f"s3://{target} needs boto3, which is not installed in this image; "
            "install it (pip install boto3) or use a pvc://, http(s):// or file location"
        ) from exc
    bucket, _, key = target.partition("/")
    client = boto3.client("s3")
    try:
        if key and not key.endswith("/"):
            destination = target_dir / Path(key).name
            if not destination.exists():
                target_dir.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(destination))
            return destination
        destination = target_dir / "tree"
        if not destination.exists():
            staging = Path(tempfile.mkdtemp(dir=_ensure(target_dir), prefix=".partial-"))
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for item in page.get("Contents", []):
                    relative = item["Key"][len(key) :]
                    if relative and not relative.endswith("/"):
                        file = _inside(staging, relative)
                        file.parent.mkdir(parents=True, exist_ok=True)
                        client.download_file(bucket, item["Key"], str(file))
            os.replace(staging, destination)
        return destination
    except LocationError:
        raise
    except Exception as exc:  # boto3 raises many unrelated types; the message says enough
        raise LocationError(f"cannot download s3://{target}: {exc}") from exc


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _inside(root: Path, relative: str, entry: str | None = None) -> Path:
    """``root / relative``, refusing names that would escape ``root`` (``../``, absolute paths); ``entry``
    names the archive entry in the error when ``relative`` is where it links to."""
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()):
        what = repr(relative) if entry is None else f"{entry!r} (a link to {relative!r})"
        raise LocationError(f"refusing to unpack {what}: it points outside {root}")
    return candidate


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def unpack_archive(path: Path, cache: Path | None = None) -> Path:
    """Unpack a model archive once (keyed by its path, size and mtime); returns the unpacked directory."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    destination = (cache or download_dir()) / f"unpacked-{key}"
    if destination.is_dir():
        return _single_top_directory(destination)
    staging = Path(tempfile.mkdtemp(dir=_ensure(destination.parent), prefix=".partial-"))
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    _inside(staging, name)
                archive.extractall(staging)
        else:
            _unpack_tar(path, staging)
        os.replace(staging, destination)
    except LocationError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise LocationError(f"cannot unpack {path}: {exc}") from exc
    return _single_top_directory(destination)


def _unpack_tar(path: Path, staging: Path) -> None:
    """Unpack a tar archive, refusing entries (names and links) that point outside ``staging``."""
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            _inside(staging, member.name)  # the "data" filter would only strip a leading "/"
            if member.issym():
                _inside(staging, os.path.join(os.path.dirname(member.name), member.linkname), member.name)
            elif member.islnk():
                _inside(staging, member.linkname, member.name)
        try:
            # "data" also resolves links unpacked earlier (a/link -> .., then a/link/../x), which a look at
            # the names alone cannot.
            archive.extractall(staging, filter="data")
        except tarfile.FilterError as exc:
            name = exc.tarinfo.name if exc.tarinfo is not None else "?"
            raise LocationError(f"refusing to unpack {name!r}: it points outside {staging} ({exc})") from exc


def _single_top_directory(root: Path) -> Path:
    """Archives often wrap everything in one folder; step into it."""
    entries = [entry for entry in root.iterdir() if not entry.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def resolve_version(path: Path, version: str) -> Path:
    """Apply the version rule of this module's docstring; raises :class:`LocationError` when absent."""
    if not version:
        return path
    if not path.exists():
        raise LocationError(f"{path} does not exist")
    if (path / version).exists():
        return path / version
    manifest = (path if path.is_dir() else path.parent) / VERSION_MANIFEST
    if manifest.is_file():
        try:
            declared = json.loads(manifest.read_text()).get("version")
        except (ValueError, AttributeError) as exc:
            raise LocationError(f"{manifest} is not a JSON object with a 'version' field") from exc
        if str(declared) != version:
            raise LocationError(f"{path} holds version {declared!r} (from {manifest}), not {version!r}")
        return path
    if path.name == version or (path.parent.name == version and path.is_file()):
        return path
    raise LocationError(
        f"version {version!r} not found: no {path / version}, no {VERSION_MANIFEST} declaring it, "
        f"and {path.name!r} is not named after it"
    )


def fetch(uri: str, version: str, *, pvc_root: str = DEFAULT_PVC_ROOT) -> Path:
    """A location made local (downloaded, archives unpacked) and its version resolved."""
    location = parse_location(uri)
    path = local_path(uri, pvc_root=pvc_root)
    if is_archive(path):
        path = unpack_archive(path)
    if version and location.is_remote and version in urllib.parse.urlparse(uri).path.split("/"):
        return path
    return resolve_version(path, version)
