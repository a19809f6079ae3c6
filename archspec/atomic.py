"""File output: a temporary file beside the target, then a rename over it; never onto anything but a file.

- a regular file, or a name that does not exist yet: written to `.NAME.XXXX.tmp` in the same folder and
  renamed over the target, so a failure never leaves a half-written file. A new file gets the mode the
  umask allows (0644 under umask 022); a replaced file keeps its permission bits.
- a character device (`/dev/null`, a terminal): written through, never replaced.
- a symlink, a directory, a FIFO, a socket or a block device: refused (`io.output`, exit 2), as is a
  target whose folder does not exist. A symlink is refused even when it points at a regular file: the
  rename would replace the link, and following it would write outside the folder named.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from archspec.errors import ArchspecError, Location


class OutputError(ArchspecError, OSError):
    """An output path archspec will not write (also an OSError, as every failure to write is)."""

    code = "io.output"
    exit_code = 2


def _refuse(path: Path, message: str, hint: str = "") -> OutputError:
    return OutputError(message, Location(str(path)), hint, code="io.output")


def check_output(path: str | Path) -> os.stat_result | None:
    """Check an output path before any work is done. Returns the target's lstat, None when it is new."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _refuse(path, f"cannot use this output path: {exc.strerror}") from None
    if info is not None:
        mode = info.st_mode
        if stat.S_ISLNK(mode):
            raise _refuse(path, "the output path is a symbolic link; archspec does not write through or replace links",
                          "name the file the link points to, or remove the link")
        if stat.S_ISDIR(mode):
            raise _refuse(path, "the output path is a directory", "name a file inside it")
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            raise _refuse(path, "the output path is not a regular file or a character device (a FIFO, socket "
                          "or block device)", "name a regular file")
        return info
    parent = path.parent
    try:
        pinfo = os.stat(parent)
    except OSError:
        raise _refuse(path, f"the output folder {str(parent)[:200]!r} does not exist", "create it first") from None
    if not stat.S_ISDIR(pinfo.st_mode):
        raise _refuse(path, f"{str(parent)[:200]!r} is not a folder")
    return None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: bytes | str) -> None:
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    info = check_output(path)
    if info is not None and stat.S_ISCHR(info.st_mode):
        _write_through(path, payload)
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:
        raise _refuse(path, f"cannot write in its folder: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        again = check_output(path)  # the target may have changed while we wrote: never rename onto a non-file
        if again is not None and not stat.S_ISREG(again.st_mode):
            raise _refuse(path, "the output path stopped being a regular file while it was written")
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise _refuse(path, f"cannot write: {exc.strerror or exc}") from exc
        raise


def install_file(src: str | Path, path: str | Path) -> None:
    """Move a finished file `src` (written in `path`'s folder) onto `path` under the rules of `write_atomic`:
    a new file gets the mode the umask allows, a replaced one keeps its bits, a character device is written
    through. `src` is gone afterwards, whatever happens."""
    path, src = Path(path), Path(src)
    try:
        info = check_output(path)
        if info is not None and stat.S_ISCHR(info.st_mode):
            _write_through(path, src.read_bytes())
            return
        os.chmod(src, stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask())
        os.replace(src, path)
    except OutputError:
        raise
    except OSError as exc:
        raise _refuse(path, f"cannot write: {exc.strerror or exc}") from exc
    finally:
        src.unlink(missing_ok=True)


def _write_through(path: Path, payload: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISCHR(os.fstat(fd).st_mode):
            raise _refuse(path, "the output path stopped being a character device")
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
