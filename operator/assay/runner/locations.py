"""Model, dataset and output locations: from a URI to a local path.

Accepted forms:

* a plain path (``/data/digits``, ``data/digits`` relative to the working directory) or ``file:///data/digits``;
* ``pvc://claim/path`` — the claim is mounted by the operator at ``<ASSAY_PVC_ROOT>/<claim>``
  (:func:`assay.contract.pvc_local_path`);
* ``https://`` — downloaded into the download directory; a ``#sha256=<hex>`` fragment makes the runner check
  the file's digest and refuse it on mismatch. A cached copy is used again when its digest matches, or,
  without a digest, when the server answers a conditional request (ETag / Last-Modified) with 304; else it
  is fetched again. A redirect to ``http://`` is refused;
* ``http://`` — only with ``#sha256=``: anyone on the network path could change what it serves;
* ``s3://bucket/key`` (a single object) or ``s3://bucket/prefix/`` (everything under it) — needs ``boto3``,
  which the runner does not install; credentials and endpoint come from boto3's usual environment variables.
  A cached copy is used again while the objects' ETags are unchanged.

A model location that is an archive (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``) is unpacked next to it.

The download directory (``ASSAY_DOWNLOAD_DIR``, default ``$TMPDIR/assay-downloads-<uid>``) is created with
mode 0700 and refused when another user could write to it: a model planted there would run as this user's
code. A location brings at most ``ASSAY_DOWNLOAD_MAX_BYTES`` (default 50 GiB) to disk: a download, everything
under an s3 prefix, or an archive once unpacked.

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

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPMessage
from pathlib import Path
from typing import IO

from assay.contract import DEFAULT_PVC_ROOT, pvc_claim, pvc_local_path

# Where http(s) and s3 downloads (and unpacked archives) are kept; runner-only settings.
ENV_DOWNLOAD_DIR = "ASSAY_DOWNLOAD_DIR"
ENV_DOWNLOAD_MAX_BYTES = "ASSAY_DOWNLOAD_MAX_BYTES"
# Bounds what one location may put on the node's disk; large models fit, an endless stream does not.
DEFAULT_DOWNLOAD_MAX_BYTES = 50 * 1024**3
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
        if scheme == "http" and digest is None:
            raise LocationError(
                f"{uri!r}: plain http:// needs a #sha256=<64 hex digits> fragment (anyone on the network "
                "path could change the file); use https:// or add the file's checksum"
            )
        return Location(scheme, url, digest)
    if scheme == "s3":
        if not rest.split("/", 1)[0]:
            raise LocationError(f"{uri!r} has no bucket; write s3://<bucket>/<key>")
        return Location("s3", rest)
    raise LocationError(
        f"{uri!r}: unknown scheme {scheme!r}; use a path, file://, pvc://, http(s):// or s3://"
    )


def download_dir() -> Path:
    """``ASSAY_DOWNLOAD_DIR``, else this user's own directory under the temporary directory."""
    configured = os.environ.get(ENV_DOWNLOAD_DIR)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"assay-downloads-{os.getuid()}"


def private_dir(path: Path) -> Path:
    """``path``, created with mode 0700; refused when it is a link or another user could write to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a directory"
    elif info.st_uid != os.getuid():
        problem = f"belongs to uid {info.st_uid}, not to this user (uid {os.getuid()})"
    elif info.st_mode & 0o022:
        problem = f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    if problem is not None:
        raise LocationError(
            f"download directory {path} {problem}: another user could plant a model there; "
            f"remove it or set {ENV_DOWNLOAD_DIR} to a directory of your own"
        )
    return path


def max_download_bytes() -> int:
    raw = os.environ.get(ENV_DOWNLOAD_MAX_BYTES, "").strip()
    if not raw:
        return DEFAULT_DOWNLOAD_MAX_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise LocationError(
            f"{ENV_DOWNLOAD_MAX_BYTES} must be a number of bytes (an integer > 0), got {raw!r}"
        )
    return int(raw)


def _too_large(what: str, size: str, limit: int) -> LocationError:
    return LocationError(
        f"{what} {size}, over the limit of {limit} bytes ({ENV_DOWNLOAD_MAX_BYTES}); "
        "raise the limit if the node has the disk for it"
    )


def local_path(uri: str, *, pvc_root: str = DEFAULT_PVC_ROOT, cache: Path | None = None) -> Path:
    """The local path of a location, downloading remote ones first (local ones may not exist)."""
    location = parse_location(uri)
    if location.scheme == "file":
        return Path(location.target)
    if location.scheme == "pvc":
        return Path(pvc_local_path(location.target, pvc_root))
    target_dir = private_dir(cache or download_dir()) / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if location.scheme == "s3":
        return _download_s3(location.target, target_dir)
    return _download_http(location, target_dir)


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but never from https:// to anything else, nor to a scheme other than http(s)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlparse(req.full_url).scheme, urllib.parse.urlparse(newurl).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new != "https"):
            raise LocationError(
                f"{req.full_url} redirected from {old}:// to {new}://, refused: the file would travel "
                "unprotected; fix the location or the server"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngrade)
# The response headers that let a cached download be checked with a conditional request.
_VALIDATORS = {"ETag": "If-None-Match", "Last-Modified": "If-Modified-Since"}


def _download_http(location: Location, target_dir: Path) -> Path:
    name = Path(urllib.parse.urlparse(location.target).path).name or "download"
    destination = target_dir / name
    validators = target_dir / f".{name}.validators.json"
    limit = max_download_bytes()
    conditions: dict[str, str] = {}
    if destination.exists():
        if location.sha256 is not None:
            if _sha256_of(destination) == location.sha256:
                return destination
        else:
            conditions = _read_conditions(validators)
    target_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, partial = tempfile.mkstemp(dir=target_dir, prefix=".partial-")
    try:
        request = urllib.request.Request(location.target, headers=conditions)
        with os.fdopen(fd, "wb") as out, _OPENER.open(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                raise _too_large(location.target, f"is {length} bytes", limit)
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise _too_large(location.target, f"passed {limit} bytes", limit)
                digest.update(chunk)
                out.write(chunk)
            stored = {name: value for name in _VALIDATORS if (value := response.headers.get(name))}
        if location.sha256 is not None and digest.hexdigest() != location.sha256:
            raise LocationError(
                f"{location.target}: sha256 is {digest.hexdigest()}, expected {location.sha256}; "
                "the file changed or the checksum in the URI is wrong"
            )
        os.replace(partial, destination)  # atomic: a half-downloaded file is never taken for a whole one
        # After the file: a crash between the two leaves old validators, which only cost a new download.
        validators.write_text(json.dumps(stored))
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and conditions:
            return destination  # not modified since it was downloaded
        raise LocationError(f"cannot download {location.target}: {exc}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise LocationError(f"cannot download {location.target}: {exc}") from exc
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return destination


def _read_conditions(validators: Path) -> dict[str, str]:
    """The conditional-request headers for a cached download; none (a full download) when unknown."""
    try:
        stored = json.loads(validators.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {_VALIDATORS[key]: str(value) for key, value in stored.items() if key in _VALIDATORS}


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
    limit = max_download_bytes()
    try:
        if key and not key.endswith("/"):
            head = client.head_object(Bucket=bucket, Key=key)
            if head["ContentLength"] > limit:
                raise _too_large(f"s3://{target}", f"is {head['ContentLength']} bytes", limit)

            def fetch_object(staging: Path) -> None:
                client.download_file(bucket, key, str(staging))

            return _fetch_unless_current(
                target_dir / Path(key).name, head["ETag"], fetch_object, is_dir=False
            )
        objects = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    objects[item["Key"]] = item
        total = sum(item["Size"] for item in objects.values())
        if total > limit:
            raise _too_large(f"s3://{target}", f"holds {total} bytes", limit)

        def fetch_tree(staging: Path) -> None:
            for name in objects:
                if relative := name[len(key) :]:
                    file = _inside(staging, relative)
                    file.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, name, str(file))

        stamp = json.dumps(sorted((name, item["ETag"]) for name, item in objects.items()))
        return _fetch_unless_current(target_dir / "tree", stamp, fetch_tree, is_dir=True)
    except LocationError:
        raise
    except Exception as exc:  # boto3 raises many unrelated types; the message says enough
        raise LocationError(f"cannot download s3://{target}: {exc}") from exc


def _fetch_unless_current(
    destination: Path, stamp: str, fetch: Callable[[Path], None], *, is_dir: bool
) -> Path:
    """``destination`` as it is when it was fetched for ``stamp`` (the objects' ETags), else fetched again."""
    stamp_file = destination.with_name(f".{destination.name}.stamp")
    with contextlib.suppress(OSError):
        if destination.exists() and stamp_file.read_text() == stamp:
            return destination
    parent = _ensure(destination.parent)
    if is_dir:
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=".partial-"))
    else:
        fd, name = tempfile.mkstemp(dir=parent, prefix=".partial-")
        os.close(fd)
        staging = Path(name)
    try:
        fetch(staging)
        _replace(staging, destination)
        stamp_file.write_text(stamp)
    finally:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
    return destination


def _replace(staging: Path, destination: Path) -> None:
    """Move ``staging`` to ``destination``, which may exist (an older copy); atomic for a file."""
    if staging.is_dir() and destination.is_dir():
        old = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".old-"))
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it already
            os.replace(destination, old / destination.name)
        shutil.rmtree(old, ignore_errors=True)
    try:
        os.replace(staging, destination)
    except OSError:
        if not destination.is_dir():  # a directory another process put there first is as good as ours
            raise


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
    destination = private_dir(cache or download_dir()) / f"unpacked-{key}"
    if destination.is_dir():
        return _single_top_directory(destination)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".partial-"))
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                # zipfile stops each entry at its declared size, so the sum bounds what lands on disk.
                _check_unpacked_size(path, sum(entry.file_size for entry in archive.infolist()))
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
        _check_unpacked_size(path, sum(member.size for member in archive.getmembers()))
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


def _check_unpacked_size(path: Path, size: int) -> None:
    limit = max_download_bytes()
    if size > limit:
        raise _too_large(str(path), f"unpacks to {size} bytes", limit)


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
