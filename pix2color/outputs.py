"""Where outputs go and how they are written, so that nothing a user owns is lost.

`plan_outputs` names every input's outputs before any work: no output is ever one of the inputs,
no two inputs share an output, and a file that exists is replaced only when asked.
`write_output` (and `reserve_temporary` / `move_into_place`, for a file written bit by bit, a
video) gives a file its name only once it is whole, and only while the name is free unless
asked. docs/never_lost.md lists these promises and the tests that keep them.

`write_text_atomically` / `write_json_atomically`: the small files of a run (run.json, its
records), which a reader sees old or new, never half written.

Standard library only: every command that writes a file uses it, before TensorFlow loads or
without it, and `pix2color export` writes it, unchanged, into the device's one-file runner
(`pix2color.export.one_file`).
"""

from __future__ import annotations

import errno
import io
import itertools
import json
import os
import secrets
import shutil
import stat
import tempfile
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pix2color.errors import OutputExists  # noqa: F401 - the module's errors, importable from here too

COLORIZED = "_colorized"  # NAME_colorized.EXT: the output of an input that is in the output's place
SKIPPED_SUMMARY = "their outputs exist; --overwrite replaces them"


@dataclass(frozen=True)
class Wanted:
    """An input and the output it asks for: a path below the output folder, suffix included."""

    source: Path
    relative: Path
    compare: bool = False  # also NAME_compare.jpg next to the output


@dataclass
class Planned:
    """One input's outputs after `plan_outputs`' rules. `target` is None when the input is
    skipped: its output exists and may not be replaced. `compare` is None unless asked for and free."""

    source: Path
    target: Path | None = None
    compare: Path | None = None
    renamed: list[str] = field(default_factory=list)  # one line per output given another name, saying why
    skipped: list[str] = field(default_factory=list)  # one line per existing output left as it is


def plan_outputs(wanted: list[Wanted], out: str | os.PathLike, overwrite: bool = False) -> list[Planned]:
    """Where each input's outputs go, so that nothing a user owns is lost:

    - an output that would be one of the inputs (the same path, or the same file through a
      symlink or a hard link) becomes NAME_colorized.EXT (then NAME_colorized-2.EXT, ...), even
      with `overwrite`: an input is never written;
    - an output another input already has becomes NAME-2.EXT (NAME-3.EXT, ...): every input
      gets its own;
    - any other output that already exists is skipped unless `overwrite`.

    Names depend on the inputs and `out`, not on which outputs exist already, so the same command
    run again finds the first run's outputs under the same names (and skips them).
    """
    names = _Names([item.source for item in wanted], overwrite)
    return [names.plan(item, Path(out)) for item in wanted]


def _path_key(path: Path) -> str:
    """Equal for two spellings of one path (symlinks followed as far as they exist)."""
    return os.path.normcase(os.path.realpath(path))


def _file_identity(path: Path) -> tuple[int, int] | None:
    """What `os.path.samefile` compares (device, inode): equal for hard links; None if absent."""
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return status.st_dev, status.st_ino


class _Names:
    """The inputs, which no output may be, and the outputs given out so far (to which input)."""

    def __init__(self, sources: list[Path], overwrite: bool):
        self.overwrite = overwrite
        self.inputs = {_path_key(source) for source in sources}
        self.input_files = {identity for identity in map(_file_identity, sources) if identity}
        self.owners: dict[str, Path] = {}

    def plan(self, item: Wanted, out: Path) -> Planned:
        planned = Planned(item.source)
        target = self._claim(item.source, out / item.relative, planned)
        compare = target.with_name(f"{target.stem}_compare.jpg")
        compare = self._claim(item.source, compare, planned) if item.compare else None
        planned.target = self._kept(target, planned)
        if planned.target is not None and compare is not None:
            planned.compare = self._kept(compare, planned)
        return planned

    def is_input(self, path: Path) -> bool:
        return _path_key(path) in self.inputs or _file_identity(path) in self.input_files

    def _claim(self, source: Path, wanted: Path, planned: Planned) -> Path:
        path = self._free_name(wanted)
        if path != wanted:
            why = "is one of the inputs" if self.is_input(wanted) else f"is {self.owners[_path_key(wanted)]}'s output"
            planned.renamed.append(f"{quoted(source)} -> {quoted(path)} ({quoted(wanted)} {why})")
        self.owners[_path_key(path)] = source
        return path

    def _free_name(self, wanted: Path) -> Path:
        if self.is_input(wanted):
            stem = wanted.stem + COLORIZED
            stems = itertools.chain([stem], (f"{stem}-{n}" for n in itertools.count(2)))
        elif _path_key(wanted) in self.owners:
            stems = (f"{wanted.stem}-{n}" for n in itertools.count(2))
        else:
            return wanted
        candidates = (wanted.with_name(stem + wanted.suffix) for stem in stems)
        return next(path for path in candidates if not self.is_input(path) and _path_key(path) not in self.owners)

    def _kept(self, path: Path, planned: Planned) -> Path | None:
        """`path`, or None (and a line saying so) when it exists and may not be replaced: a
        folder never is."""
        if (self.overwrite and not _is_folder(path)) or not os.path.lexists(path):
            return path
        planned.skipped.append(exists_message(path))
        return None


def quoted(path: str | os.PathLike) -> str:
    """A path as messages show it: itself, unless it holds what a terminal would not show as
    written (a newline, an escape sequence, bytes that are not UTF-8): then those are escaped
    (\\n, \\x1b, \\xe9) and the whole is quoted, so a name never reads as a second line."""
    text = os.fspath(path)
    text = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if shown == text and text.isprintable():
        return text
    return "'" + "".join(char if char.isprintable() else repr(char)[1:-1] for char in shown) + "'"


def exists_message(path: Path) -> str:
    if _is_folder(path):
        return f"{quoted(path)} is a folder; left as it is (no option replaces a folder)"
    if _is_special(path):
        return f"{quoted(path)} is not a regular file (a FIFO, a device or a socket); left as it is (no option replaces it)"
    return f"{quoted(path)} exists; left as it is (--overwrite replaces it)"


def _is_folder(path: Path) -> bool:
    """A folder itself, not a symlink to one (which --overwrite replaces as it replaces any symlink)."""
    return os.path.isdir(path) and not os.path.islink(path)


def _is_special(path: Path) -> bool:
    """A FIFO, a device or a socket itself (not a symlink to one): never a file an earlier run wrote."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode)


def summary(written: int, skipped: int, failed: int, out: str | os.PathLike | None = None) -> str:
    """The last line of a run: inputs colorized, skipped (their outputs exist) and failed."""
    into = f" into {quoted(out)}" if out is not None else ""
    return (f"{written} colorized{into}, {skipped} skipped" + (f" ({SKIPPED_SUMMARY})" if skipped else "")
            + f", {failed} failed")


def check_output_folder(out: str | os.PathLike, flag: str = "-o") -> None:
    """ValueError in plain words unless `out` is a folder this process can write in, or can
    create (checked before any work; nothing is created). `flag` names the option in the message.
    An empty name (an unset variable in a script) is refused, not taken as the current folder."""
    if not os.fspath(out).strip():
        raise ValueError(f"{flag} is empty (an unset variable?): give a folder, . for the current one")
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise ValueError(f"{flag} {quoted(out)}: exists and is not a folder")
    existing = next(folder for folder in [out, *out.absolute().parents] if os.path.lexists(folder))
    if not existing.is_dir():
        raise ValueError(f"{flag} {quoted(out)}: cannot be created: {quoted(existing)} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"{flag} {quoted(out)}: cannot write in {quoted(existing)} ({error.strerror or error})") from None


def write_output(path: Path, write: Callable[[typing.BinaryIO], None], overwrite: bool = False) -> None:
    """Write the file `path` through `write(handle)`, never replacing a file unless `overwrite`.

    `write` fills memory first; its bytes are then written with Python's file API and counted,
    because an encoder writing to a file itself may not notice a full disk (Pillow's JPEG
    encoder does not): a short file raises OSError (ENOSPC) instead of taking the output's name.
    The file is written whole under a hidden temporary name in the same folder, then given its
    name (`move_into_place`): a process killed mid-write leaves no half file under the output's
    name. Without `overwrite` a file there, even one that appeared after the plan was made,
    raises `OutputExists` and is left alone; with it, a symlink there is replaced, not the file
    it points to.
    """
    encoded = io.BytesIO()
    write(encoded)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = reserve_temporary(path)
    try:
        _fill(temporary, "wb", lambda handle: _write_all(handle, encoded.getbuffer(), path))
        move_into_place(temporary, path, overwrite)
    finally:
        temporary.unlink(missing_ok=True)


def _write_all(handle: typing.BinaryIO, data: memoryview, path: Path) -> None:
    """Write `data`, then check the file holds all of it (OSError ENOSPC naming `path` if not)."""
    handle.write(data)
    handle.flush()
    written = os.fstat(handle.fileno()).st_size
    if written != len(data):
        raise OSError(errno.ENOSPC, f"only {written:,} of {len(data):,} bytes written (disk full?)", str(path))


def _fill(path: Path, mode: str, write: Callable[[typing.BinaryIO], None]) -> None:
    try:
        handle = open(path, mode)  # noqa: SIM115 - "xb" raises before anything is created
    except FileExistsError:
        raise OutputExists(errno.EEXIST, "exists", str(path)) from None
    try:
        with handle:
            write(handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


NAME_MAX = 255  # bytes of a file name on the file systems pix2color writes to (ext4, APFS, NTFS)


def reserve_temporary(path: Path) -> Path:
    """A new, empty hidden file next to `path` (.NAME.PID-RANDOM.part, NAME shortened to keep the
    whole within `NAME_MAX` bytes), created exclusively so that whatever is written into it is
    nobody else's file. Such files of `path` that a killed process left (its PID no longer runs
    on this machine) are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = _temporary_prefix(path)
    remove_stale_temporaries(path)
    while True:
        temporary = path.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}.part")
        try:
            open(temporary, "xb").close()  # noqa: SIM115
            return temporary
        except FileExistsError:
            continue


def _temporary_prefix(path: Path) -> str:
    """'.NAME.', NAME cut (at a character, not inside one) to leave room for the PID and the rest."""
    room = NAME_MAX - len(".") - len(".") - len("4194304-0123abcd.part")
    encoded = os.fsencode(path.name)
    if len(encoded) > room:
        encoded = encoded[:room]
        while encoded:  # drop a cut UTF-8 sequence's leftover bytes
            try:
                encoded.decode("utf-8")
                break
            except UnicodeDecodeError:
                encoded = encoded[:-1]
    return f".{os.fsdecode(encoded)}."


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of `path` whose writer is gone: a process killed mid-write (kill -9,
    a power cut) leaves one, named with its PID. Returns what was removed."""
    prefix, removed = _temporary_prefix(path), []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".part")):
            continue
        pid = name[len(prefix):-len(".part")].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            try:
                os.unlink(path.parent / name)
                removed.append(path.parent / name)
            except OSError:
                pass
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def move_into_place(temporary: Path, path: Path, overwrite: bool = False) -> None:
    """Give a finished temporary file its name, with `write_output`'s rule: without `overwrite`
    only while the name is free (a hard link, which fails on an existing name; a copy into an
    exclusively created file where the file system has no hard links). The temporary is removed."""
    try:
        if overwrite and _is_folder(path):
            raise OutputExists(errno.EISDIR, "is a folder", str(path))
        if overwrite and _is_special(path):
            raise OutputExists(errno.EEXIST, "is not a regular file", str(path))
        if overwrite:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise OutputExists(errno.EEXIST, "exists", str(path)) from None
        except OSError:  # no hard links here: an exclusively created file, filled with a copy
            with open(temporary, "rb") as source:
                _fill(path, "xb", lambda handle: shutil.copyfileobj(source, handle, 1 << 20))
    finally:
        temporary.unlink(missing_ok=True)


# --------------------------------------------------------------------------- files a run writes


def write_text_atomically(path: str | os.PathLike, text: str) -> bool:
    """Write `text` so that a reader (another worker, or the next run after this one was killed
    mid-write) sees the old file or the new one, never half of one.

    A file that already holds `text` is left as it is (False): a rerun with nothing to do writes
    nothing, and a file hard-linked elsewhere is never written through.
    """
    path, data = Path(path), text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass  # missing or unreadable: written anew
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    return True


def write_json_atomically(path: str | os.PathLike, value, indent: int | None = None) -> bool:
    """`value` as JSON, by `write_text_atomically`."""
    return write_text_atomically(path, json.dumps(value, indent=indent) + "\n")
