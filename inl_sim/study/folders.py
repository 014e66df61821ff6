"""Output folders that never lose work: safe names, markers, one lock per study, atomic writes.

Rules (README "Never lose work"):

- Every folder inl-sim creates holds a marker file ``.inl-sim`` (a JSON stamp: kind,
  package version, pid, time).  inl-sim replaces or deletes only folders that carry it,
  and only the temporary folders it made itself; a non-empty folder without the marker
  is refused, never emptied.
- Names that become path components (the scenario name, method names) must stay one
  component: no separators, no ``..``, no NUL or control characters, not absolute, not
  empty, at most :data:`MAX_NAME_CHARS` characters, not a reserved name.  Generated
  names (sweep points, survey labels) are slugged; two names with one slug are refused
  before any training.
- A study holds an OS lock (``fcntl.flock`` on ``.inl-sim.lock`` inside its folder) for
  its whole life, so a second study on the same folder refuses at once; the kernel
  drops the lock when the holder dies, even by SIGKILL, so a lock is never stale.
- Folders and files are made with ``os.mkdir``/``open`` (never ``mkdtemp``'s 0700), so
  the user's umask decides their permissions.
- A run folder is written under ``.<name>.tmp-<pid>-<hex>`` beside its final place and
  renamed into place when complete; a file is written under a temporary name and
  ``os.replace``-d.  Temporaries left by a killed study are removed by the next study
  on the same folder, under its lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from inl_sim import __version__
from inl_sim.errors import ResultsError, ScenarioError

__all__ = ["MARKER", "LOCK", "MAX_NAME_CHARS", "check_name", "slug", "folder_names", "is_ours", "stamp",
           "read_stamp", "claim_dir", "study_folder", "atomic_dir", "write_text_atomic", "check_run_target",
           "clean_stale"]

log = logging.getLogger(__name__)

MARKER = ".inl-sim"
LOCK = ".inl-sim.lock"
MAX_NAME_CHARS = 100
_WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
#: names of the files a study writes beside its run folders
STUDY_FILES = {f"{stem}.{ext}" for stem in ("comparison", "sweep", "survey") for ext in ("json", "csv", "md")}
#: kinds of folder a study may (re)use; a run or rate-curve folder is not one
STUDY_KINDS = ("compare", "sweep", "topologies")
_RESERVED = STUDY_FILES | {"report.html", "runs"}
_TEMP = re.compile(r"^\..+\.(tmp|old)-\d+-[0-9a-f]+$")


def check_name(name: Any, field: str) -> str:
    """Return ``name`` if it is safe as one folder name, else raise :class:`ScenarioError`.

    Why: a scenario or method name becomes a path component of the results; ``..``, a
    separator or an absolute name would write (and, in 0.1, delete) outside the output
    folder.
    """
    fix = "use letters, digits, spaces and . _ - = , only, e.g. 'dense' or 'D-INL beta=1e-3'"
    if not isinstance(name, str) or not name.strip():
        raise ScenarioError(f"{field}: {name!r} must be a non-empty string; {fix}")
    if len(name) > MAX_NAME_CHARS:
        raise ScenarioError(f"{field}: {name[:40]!r}... has {len(name)} characters, more than {MAX_NAME_CHARS}; "
                            "give a shorter name")
    bad = sorted({c for c in name if c in "/\\" or ord(c) < 32 or ord(c) == 127})
    if bad:
        raise ScenarioError(f"{field}: {name!r} contains {''.join(bad)!r} (path separators and control "
                            f"characters, NUL included, would leave the output folder); {fix}")
    if name.startswith(".") or os.path.isabs(name):
        raise ScenarioError(f"{field}: {name!r} starts with '.' or is an absolute path (it would leave the "
                            f"output folder or hide among inl-sim's own files); {fix}")
    if name.split(".")[0].strip().lower() in _WINDOWS_DEVICES or name.lower() in _RESERVED:
        raise ScenarioError(f"{field}: {name!r} is a reserved name (a device name or a file inl-sim writes "
                            f"beside the run folders: {', '.join(sorted(_RESERVED))}); choose another name")
    return name


def slug(name: str) -> str:
    """A folder name for any name: letters, digits and ``._-=,`` kept, the rest ``_``.

    A leading dot becomes ``_`` (so ``..`` cannot climb and no name hides among inl-sim's
    own dot files); names longer than :data:`MAX_NAME_CHARS` keep a prefix and a hash.
    """
    keep = "".join(c if c.isalnum() or c in "._-=," else "_" for c in name) or "method"
    if keep.startswith("."):
        keep = "_" + keep[1:]
    if len(keep) > MAX_NAME_CHARS:
        import hashlib
        keep = keep[:MAX_NAME_CHARS - 17] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    if keep.lower() in _RESERVED or keep.split(".")[0].lower() in _WINDOWS_DEVICES:
        keep = "_" + keep
    return keep


def folder_names(names: Iterable[str], field: str) -> dict[str, str]:
    """Map each name to its folder (:func:`slug`); refuse two names with one folder."""
    out: dict[str, str] = {}
    for name in names:
        folder = slug(name)
        other = next((n for n, f in out.items() if f == folder and n != name), None)
        if other is not None:
            raise ScenarioError(f"{field}: {other!r} and {name!r} would share the results folder {folder!r}; "
                                "rename one of them so that they differ in letters or digits")
        out[name] = folder
    return out


def is_ours(path: Path) -> bool:
    """True when ``path`` is a folder that inl-sim made (it holds the marker file)."""
    return (Path(path) / MARKER).is_file()


def stamp(folder: Path, kind: str, **extra: Any) -> None:
    """Write the marker of a folder inl-sim made (never replaces an existing marker)."""
    data = {"inl_sim": __version__, "kind": kind, "pid": os.getpid(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    try:
        fd = os.open(Path(folder) / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, default=str) + "\n")


def read_stamp(folder: Path) -> dict | None:
    """The marker's JSON, or None when absent or unreadable."""
    try:
        return json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _refuse_foreign(path: Path, what: str) -> ResultsError:
    return ResultsError(f"{path}: {what} exists, is not empty and was not made by inl-sim (no {MARKER} "
                        "marker); inl-sim never writes into or empties such a folder; choose a new or empty "
                        "folder (e.g. --out results/new-study)")


def claim_dir(path: Path, kind: str) -> Path:
    """Create ``path`` (with parents; umask decides permissions) or accept it when it is
    empty or inl-sim's; stamp it.  A non-empty folder of someone else is refused."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ResultsError(f"{path}: is a file, not a folder; choose a folder for the results")
    path.mkdir(parents=True, exist_ok=True)
    if not is_ours(path) and any(path.iterdir()):
        raise _refuse_foreign(path, "folder")
    stamp(path, kind)
    return path


@contextmanager
def _flock(folder: Path) -> Iterator[None]:
    import fcntl
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise ResultsError(f"{folder}: another inl-sim study (pid {holder}) is writing to this folder; "
                               "wait for it to finish, or give this one another --out folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def study_folder(path: Path, kind: str) -> Iterator[Path]:
    """Claim, lock and tidy a study folder for the duration of a block."""
    created = not Path(path).exists()
    found = (read_stamp(Path(path)) or {}).get("kind", kind)
    if found not in STUDY_KINDS:
        raise ResultsError(f"{path}: holds an inl-sim {found} folder, not a study; give the study another --out")
    folder = claim_dir(Path(path), kind)
    with _flock(folder):
        clean_stale(folder)
        try:
            yield folder
        except BaseException:
            if created and _holds_nothing(folder):  # a study that failed before any run ended
                shutil.rmtree(folder, ignore_errors=True)
            raise


def _holds_nothing(folder: Path) -> bool:
    """True when every file under ``folder`` is a marker or the lock (nothing to keep)."""
    return all(p.name in (MARKER, LOCK) for p in folder.rglob("*") if not p.is_dir())


def clean_stale(folder: Path, depth: int = 3) -> int:
    """Remove temporaries inl-sim left under ``folder`` (a killed study's); return how many.

    Only names of inl-sim's temporary pattern are touched, and a folder only if it holds
    the marker.  Call it under the study's lock, when no temporary can be in use.
    """
    removed = 0
    for entry in list(Path(folder).iterdir()) if depth > 0 else []:
        if _TEMP.match(entry.name):
            if entry.is_dir() and not entry.is_symlink() and is_ours(entry):
                shutil.rmtree(entry)
                removed += 1
            elif entry.is_file() and not entry.is_symlink():
                entry.unlink()
                removed += 1
        elif entry.is_dir() and not entry.is_symlink() and is_ours(entry):
            removed += clean_stale(entry, depth - 1)
    if removed:
        log.info("%s: removed %d temporary item(s) of an interrupted study", folder, removed)
    return removed


def _temp_name(target: Path, kind: str = "tmp") -> Path:
    return target.parent / f".{target.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


def check_run_target(target: Path, overwrite: bool, kind: str = "run") -> None:
    """Refuse, before any work, a run folder that exists unless it may be replaced: empty,
    or (with ``overwrite``) made by inl-sim as the same kind (a run never replaces a study)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ResultsError(f"{target}: is a file, not a folder; choose a folder for the run")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not is_ours(target):
        raise _refuse_foreign(target, "run folder")
    found = (read_stamp(target) or {}).get("kind")
    if found != kind:
        raise ResultsError(f"{target}: holds an inl-sim {found} folder, not a {kind} folder; inl-sim does not "
                           f"replace it with a {kind}; choose another --out")
    if not overwrite:
        raise ResultsError(f"{target}: a {kind} folder is already there; pass --overwrite (overwrite=True) to "
                           "replace it, or choose another --out")


@contextmanager
def atomic_dir(target: Path, *, kind: str = "run", overwrite: bool = True,
               stamp_extra: Mapping[str, Any] | None = None) -> Iterator[Path]:
    """Yield a fresh stamped temporary folder that replaces ``target`` if the block succeeds.

    ``target`` may be absent, an empty folder, or (with ``overwrite``) a folder inl-sim
    made; anything else is refused (:func:`check_run_target`) before the block runs.
    """
    target = Path(target)
    check_run_target(target, overwrite, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(target)
    os.mkdir(tmp)
    try:
        stamp(tmp, kind, **dict(stamp_extra or {}))
        yield tmp
        check_run_target(target, overwrite, kind)  # a concurrent writer may have filled it meanwhile
        if target.is_dir() and not is_ours(target):  # an empty folder of the user's: fill it, keep it
            for entry in tmp.iterdir():
                os.replace(entry, target / entry.name)
            os.rmdir(tmp)
            return
        old = _temp_name(target, "old")
        if target.is_dir():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file under a temporary name beside it, then ``os.replace`` it into place."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
