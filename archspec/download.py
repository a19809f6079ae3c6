"""Checkpoints a spec declares under `weights:`, fetched into the cache and verified. No torch here.

A file is downloaded with urllib to a temporary file in the cache folder, hashed while it is read, and
renamed into place only when its SHA-256 starts with the declared digest (whole, or a prefix of at least 8 hex
digits); otherwise it is removed and the error is located at the spec's `sha256:`. The size is bounded by a
cap, checked against `Content-Length` before reading and again while reading. A cached file is hashed again
before every use, so the cache works offline and a damaged file is fetched anew, never loaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any

from archspec.errors import ArchspecError, LimitError, Location

CACHE_ENV = "ARCHSPEC_CACHE"
MAX_DOWNLOAD = 1 << 30  # default cap on one download (bytes); the largest shipped checkpoint is 241 MB
TIMEOUT = 60  # seconds without data before a download is abandoned
CHUNK = 1 << 20


class DownloadError(ArchspecError):
    code = "weights.download"


def cache_dir() -> Path:
    """`ARCHSPEC_CACHE`, or `~/.cache/archspec`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "archspec")


def cache_path(entry: Any) -> Path:
    """Where a weights entry lives in the cache: `<cache>/<sha256 as declared>/<file name from the URL>`."""
    name = PurePosixPath(urllib.parse.urlsplit(entry.url).path).name
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", name.split(".")[0])[:100] or "weights"
    suffix = ".safetensors" if entry.format == "safetensors" else ".pth"
    return cache_dir() / entry.sha256 / f"{stem}{suffix}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(entry: Any, where_url: Location, where_sha: Location, max_bytes: int = MAX_DOWNLOAD) -> Path:
    """The verified local file of a weights entry: from the cache when it is there and intact, else downloaded."""
    path = cache_path(entry)
    try:
        if stat.S_ISREG(os.lstat(path).st_mode) and sha256_of(path).startswith(entry.sha256):
            return path
        path.unlink()  # damaged, or not a regular file: never loaded, fetched again
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DownloadError(f"cannot use the cached file {path}: {exc.strerror or exc}", where_url,
                            f"remove it, or point {CACHE_ENV} at another folder", code="io.unreadable") from None
    _download(entry, path, where_url, where_sha, max_bytes)
    return path


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) URLs only (urllib would also follow one to ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.URLError(f"redirect to a non-HTTP URL {newurl[:100]!r} refused")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, where: Location):
    opener = urllib.request.build_opener(_HttpOnly)
    try:
        return opener.open(urllib.request.Request(url, headers={"User-Agent": "archspec"}), timeout=TIMEOUT)
    except Exception as exc:  # URLError, HTTPError, a timeout, http.client.HTTPException: not a bug
        raise _unreachable(url, exc, where) from None


def _unreachable(url: str, exc: BaseException, where: Location) -> DownloadError:
    reason = exc if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
    return DownloadError(f"cannot download {url[:200]}: {str(reason)[:200]}", where,
                         f"check the network; a file already in the cache ({CACHE_ENV}, default ~/.cache/archspec) "
                         "is used without one", code="weights.download")


def _too_large(url: str, size: int, max_bytes: int, where: Location, reading: bool) -> LimitError:
    how = f"stopped after {size:,} bytes were read" if reading else f"the server announces {size:,} bytes"
    return LimitError(f"the download of {url[:200]} is larger than the cap of {max_bytes:,} bytes ({how})", where,
                      "raise the cap with --max-download-mb (Limits(max_download_bytes=...)) if you trust the source",
                      code="limit.download")


def _download(entry: Any, target: Path, where_url: Location, where_sha: Location, max_bytes: int) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise DownloadError(f"cannot write in the cache folder {target.parent}: {exc.strerror or exc}", where_url,
                            f"set {CACHE_ENV} to a folder you can write", code="io.output") from None
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(entry.url, out, where_url, max_bytes)
            out.flush()
            os.fsync(out.fileno())
        if not digest.startswith(entry.sha256):
            raise ArchspecError(f"the file downloaded from {entry.url[:200]} has SHA-256 {digest}, which does not "
                                f"start with the declared {entry.sha256}; it was removed", where_sha,
                                "the file changed at its source, or the spec's digest is wrong; nothing was loaded",
                                code="weights.sha256")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stream(url: str, out, where: Location, max_bytes: int) -> str:  # noqa: ANN001
    """Copy the response to `out`, hashing it; refuse past `max_bytes`. Returns the hex SHA-256."""
    response = _open(url, where)
    with response:
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.isdigit() else 0
        if total > max_bytes:
            raise _too_large(url, total, max_bytes, where, False)
        print(f"archspec: downloading {url[:200]} ({total / 1e6:.1f} MB)" if total else
              f"archspec: downloading {url[:200]}", file=sys.stderr)
        digest, size, bar = hashlib.sha256(), 0, _Progress(total)
        while True:
            try:
                chunk = response.read(CHUNK)
            except Exception as exc:  # a reset, a timeout, an incomplete chunked body
                raise _unreachable(url, exc, where) from None
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(url, size, max_bytes, where, True)
            digest.update(chunk)
            out.write(chunk)
            bar.update(size)
        bar.close()
    if total and size != total:
        raise _unreachable(url, OSError(f"got {size:,} of {total:,} bytes"), where)
    return digest.hexdigest()


class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int):
        self.total, self.shown = total, 0.0
        self.enabled = sys.stderr.isatty()

    def update(self, size: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.shown < 0.1:
            return
        self.shown = now
        if self.total:
            filled = int(30 * size / self.total)
            sys.stderr.write(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {size / 1e6:.1f}/{self.total / 1e6:.1f} MB")
        else:
            sys.stderr.write(f"\r  {size / 1e6:.1f} MB")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
