"""A poll folder: its database, its images, its participants, their trials and their answers.

    poll.sqlite     pairs, participants, their trials and answers (SQLite, WAL, synchronous=FULL)
    images/         every image under an opaque random name (PNG, no metadata)
    secret.key      signs the participants' cookies, so a restarted server knows them

Two protocols, fixed when the poll is built:

- report: each trial shows the grayscale photo and ONE colour version, the original or the
  colorization; the participant answers "original" or "colorized" (stored as "generated", the
  report's word). Results: the report's confusion matrix (rows: truth, columns: answer).
- 2afc (two-alternative forced choice, as pix2pix's and Zhang et al.'s AMT tests): both versions
  side by side, "which is the real photo?". Results: the share fooled (the colorization chosen).

Trials are balanced (`Poll.new_participant`): participants come in twos, the second seeing each
pair in the version the first did not (2afc: with the original on the other side), so every pair
is shown as often in each version and, with an odd number of pairs, the one extra original of the
first is the one extra colorization of the second.

Nothing a participant receives tells the versions apart but their pixels: all images of a pair
are written by the same encoder, at the same size, without metadata, under random names, and the
two colour versions stored uncompressed (so files of the same length and chunks); the page and
the answer carry only those names, and the server sends both with the same headers
(`pix2color.poll.build` makes their pixels differ only in colour).
"""

from __future__ import annotations

import io
import os
import random
import secrets
import shutil
import sqlite3
import stat
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.errors import (  # noqa: F401 - the module's errors, importable from here too
    AnswerError,
    NotShownNow,
    PollError,
)
from pix2color.outputs import check_output_folder

PROTOCOLS = ("report", "2afc")
VERSIONS = ("original", "generated")  # as stored; pages and results say "colorized" for "generated"
ANSWER_WORDS = {"original": "original", "colorized": "generated", "generated": "generated"}  # report answers
DATABASE = "poll.sqlite"
SECRET_FILE = "secret.key"
IMAGES = "images"
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY,              -- 1..n, as shown in the results
    source TEXT NOT NULL,                -- the photo it was made from (results only, never shown)
    gray TEXT NOT NULL UNIQUE,           -- image names (opaque)
    original TEXT NOT NULL UNIQUE,
    generated TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS participants (id TEXT PRIMARY KEY, created REAL NOT NULL);  -- rowid: the order they came in
CREATE TABLE IF NOT EXISTS trials (
    participant TEXT NOT NULL REFERENCES participants(id),
    position INTEGER NOT NULL,           -- 0-based place in this participant's order
    pair INTEGER NOT NULL REFERENCES pairs(id),
    version TEXT NOT NULL,               -- report: the version shown; 2afc: the version on the left
    presented REAL,                      -- when the trial was first shown
    PRIMARY KEY (participant, pair),
    UNIQUE (participant, position)
);
CREATE TABLE IF NOT EXISTS answers (
    participant TEXT NOT NULL REFERENCES participants(id),
    pair INTEGER NOT NULL REFERENCES pairs(id),
    version TEXT NOT NULL,               -- report: the version shown; 2afc: the version on the left
    answer TEXT NOT NULL,                -- the version the participant judged original
    seconds REAL,                        -- time to answer, from the first showing
    answered REAL NOT NULL,              -- Unix time
    UNIQUE (participant, pair)           -- answering twice is idempotent
);
"""


def other_version(version: str) -> str:
    """The pair's other colour version: "original" <-> "generated"."""
    return VERSIONS[1 - VERSIONS.index(version)]


def is_right(protocol: str, version: str, judged: str) -> bool:
    """Whether an answer is right: report, the version shown (`version`) judged as what it is;
    2afc, the real photo chosen (`judged`: the version picked as the real photo)."""
    return judged == version if protocol == "report" else judged == "original"


def read_meta(database: Path) -> dict[str, str]:
    """The poll's settings, read without writing anything (`connect` switches a database to WAL):
    PollError in one line naming the file unless it is an SQLite database holding a complete
    pix2color poll (a build records its protocol last)."""
    try:
        if not stat.S_ISREG(os.stat(database).st_mode):
            raise PollError(f"{database}: not a regular file, so not a pix2color poll")
        with open(database, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise PollError(f"{database}: cannot be read ({error.strerror or error})") from None
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not an SQLite database"
        raise PollError(f"{database}: {what}, so not a pix2color poll")
    # Read-only, a WAL database without its -wal file would get one (and an -shm): without it no
    # process has the database open, so it is read as a file that does not change.
    options = "mode=ro" if os.path.exists(f"{database}-wal") else "mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(f"{database.absolute().as_uri()}?{options}", uri=True)) as connection:
            meta = dict(connection.execute("SELECT key, value FROM meta"))
            for table in ("pairs", "participants", "trials", "answers"):
                connection.execute(f"SELECT * FROM {table} LIMIT 0")
    except sqlite3.Error as error:
        raise PollError(f"{database}: not a pix2color poll ({error})") from None
    if meta.get("protocol") not in PROTOCOLS:
        raise PollError(f"{database}: an unfinished pix2color poll (no protocol recorded); build a new one with "
                        "`pix2color turing build`")
    return meta


def connect(database: Path) -> sqlite3.Connection:
    """A connection in WAL mode with full syncs: an acknowledged answer survives a killed server."""
    connection = sqlite3.connect(database, timeout=30, isolation_level=None)  # autocommit; explicit transactions
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


# --------------------------------------------------------------------------- writing


@dataclass
class PollImages:
    """One pair's three images as uint8 RGB arrays of the same size."""

    source: str
    gray: object
    original: object
    generated: object


def opaque_name() -> str:
    return secrets.token_hex(16) + ".png"


POLL_FILES = (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal", SECRET_FILE)


def poll_of(path: str | Path) -> Path | None:
    """The poll folder `path` is one of the files of (its database and journals, its secret, an
    image), symlinks followed; None for any other path. Such a file is never written."""
    real = Path(os.path.realpath(path))
    if real.name in POLL_FILES and (real.parent / DATABASE).exists():
        return real.parent
    if real.parent.name == IMAGES and (real.parent.parent / DATABASE).exists():
        return real.parent.parent
    return None


def check_poll_folder(out: str | Path) -> None:
    """PollError in one line unless `out` is a new or an empty folder that can be written: a
    poll never shares its folder with other files, so building one replaces nothing."""
    out = Path(out)
    try:
        check_output_folder(out, "--out")
    except ValueError as error:
        raise PollError(str(error)) from None
    if os.path.islink(out):
        raise PollError(f"--out {out}: is a symlink; give a new or empty folder")
    if out.is_dir() and Path(os.getcwd()).resolve().is_relative_to(out.resolve()):
        raise PollError(f"--out {out}: is the current folder (or holds it); give a new folder, or an empty one "
                        "other than where you are")
    if (out / DATABASE).exists():
        raise PollError(f"{out} already holds a poll; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise PollError(f"--out {out}: holds other files; give a new or empty folder")


def write_poll(out: str | Path, pairs: list[PollImages], protocol: str = "report", seed: int = 0,
               description: dict | None = None) -> Path:
    """Write a poll folder from prepared images into `out`, a new or empty folder.

    The poll is built in a hidden folder next to `out` and renamed to `out` once complete, so
    an interruption (Ctrl-C included) leaves no half poll that `turing results` or `serve`
    could not open and a second build would refuse: a poll folder is whole or absent.
    """
    if protocol not in PROTOCOLS:
        raise PollError(f"--protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    out = Path(out)
    check_poll_folder(out)
    whole = Path(os.path.abspath(out))
    whole.parent.mkdir(parents=True, exist_ok=True)
    building = whole.with_name(f".{whole.name}.{secrets.token_hex(4)}.part")
    building.mkdir()
    try:
        _fill_poll(building, pairs, protocol, seed, description)
        if whole.is_dir():
            os.chmod(building, stat.S_IMODE(os.stat(whole).st_mode))  # an empty folder given: its permissions kept
        try:
            os.rename(building, whole)  # replaces an empty folder, never one that holds files
        except OSError as error:
            raise PollError(f"--out {out}: cannot be written ({error.strerror or error}); "
                            "give a new or empty folder") from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return out


def encode_png(rgb: np.ndarray, compress_level: int = 6) -> bytes:
    """A poll image: the same encoder and settings for every image, and no metadata."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", optimize=False, compress_level=compress_level)
    return buffer.getvalue()


def same_length_pngs(*images: np.ndarray) -> list[bytes]:
    """The colour versions of a pair as uncompressed PNG files: same chunks, each of the same
    length. An original photo's noise compresses worse than a colorization, so any compression
    would tell them apart, by the file's size or, padded, by its chunks' sizes; stored
    uncompressed, a file's bytes depend on its pixels only through their values."""
    pngs = [encode_png(rgb, compress_level=0) for rgb in images]
    if len({len(png) for png in pngs}) != 1:
        raise ValueError(f"the colour versions of a pair differ in size or mode: {[image.shape for image in images]}")
    return pngs


def _fill_poll(folder: Path, pairs: list[PollImages], protocol: str, seed: int, description: dict | None) -> None:
    (folder / IMAGES).mkdir()
    descriptor = os.open(folder / SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
    with closing(connect(folder / DATABASE)) as database:
        database.executescript(SCHEMA)
        database.execute("BEGIN")
        for number, pair in enumerate(pairs, start=1):
            files = dict(zip(("gray", "original", "generated"),
                             [encode_png(pair.gray), *same_length_pngs(pair.original, pair.generated)]))
            names = {}
            for kind, data in files.items():
                names[kind] = opaque_name()
                (folder / IMAGES / names[kind]).write_bytes(data)
            database.execute("INSERT INTO pairs VALUES (?, ?, ?, ?, ?)",
                             (number, pair.source, names["gray"], names["original"], names["generated"]))
        meta = {"protocol": protocol, "seed": str(seed), "created": str(time.time()), **(description or {})}
        database.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        database.execute("COMMIT")


# --------------------------------------------------------------------------- taking part


# The participant's (?) current trial: their first unanswered pair in their order.
_FIRST_UNANSWERED = """SELECT t.pair, t.position, t.version, t.presented, p.gray, p.original, p.generated
    FROM trials t JOIN pairs p ON p.id = t.pair
    WHERE t.participant = ? AND NOT EXISTS (
        SELECT 1 FROM answers a WHERE a.participant = t.participant AND a.pair = t.pair)
    ORDER BY t.position LIMIT 1"""


@dataclass
class Trial:
    """What one participant is shown next; `images` are opaque names, in display order."""

    pair: int
    position: int
    total: int
    gray: str
    images: list[str]


class Poll:
    """An open poll folder: participants, their trials and answers."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.database = self.folder / DATABASE
        if not os.path.lexists(self.database):
            raise PollError(f"{self.folder}: not a poll folder (no {DATABASE}; make one with `pix2color turing build`)")
        self.meta = read_meta(self.database)
        with closing(connect(self.database)) as database:
            self.pair_count = database.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
            self.image_names = {row[0] for row in database.execute(
                "SELECT gray FROM pairs UNION SELECT original FROM pairs UNION SELECT generated FROM pairs")}
        self.protocol = self.meta["protocol"]
        self.seed = int(self.meta.get("seed", 0))

    @property
    def secret(self) -> str:
        return (self.folder / SECRET_FILE).read_text().strip()

    def image_path(self, name: str) -> Path | None:
        """The file of an image the poll shows, or None: never a path a request makes up."""
        return self.folder / IMAGES / name if name in self.image_names else None

    def new_participant(self) -> str:
        """A new anonymous participant, with their own random order of the pairs and balanced versions.

        Participants come in twos, in the order they start: the first of two sees a random half of
        the pairs in the original (with an odd number of pairs, one more), the second sees every
        pair in the other version. So each pair is shown as often as original as colorized, and
        the extra original of an odd poll goes to every other participant, not to all.
        (2afc: the version is the one on the left.)"""
        participant = secrets.token_urlsafe(16)
        rng = random.Random(f"{self.seed}:{participant}")
        order = list(range(1, self.pair_count + 1))
        rng.shuffle(order)
        with closing(connect(self.database)) as database:
            database.execute("BEGIN IMMEDIATE")  # the count and the partner's versions stay as read until COMMIT
            try:
                earlier = database.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
                if earlier % 2:
                    partner = database.execute("SELECT id FROM participants ORDER BY rowid LIMIT 1 OFFSET ?",
                                               (earlier - 1,)).fetchone()[0]
                    shown = dict(database.execute("SELECT pair, version FROM trials WHERE participant = ?",
                                                  (partner,)))
                    version_of = {pair: other_version(shown[pair]) for pair in order}
                else:
                    versions = [VERSIONS[index % 2] for index in range(self.pair_count)]  # originals first: ceil(n / 2)
                    rng.shuffle(versions)
                    version_of = dict(zip(order, versions))
                database.execute("INSERT INTO participants VALUES (?, ?)", (participant, time.time()))
                database.executemany(
                    "INSERT INTO trials (participant, position, pair, version) VALUES (?, ?, ?, ?)",
                    [(participant, position, pair, version_of[pair]) for position, pair in enumerate(order)],
                )
                database.execute("COMMIT")
            except BaseException:
                database.execute("ROLLBACK")
                raise
        return participant

    def knows(self, participant: str | None) -> bool:
        if not participant:
            return False
        with closing(connect(self.database)) as database:
            return database.execute("SELECT 1 FROM participants WHERE id = ?", (participant,)).fetchone() is not None

    def next_trial(self, participant: str) -> Trial | None:
        """The participant's first unanswered trial (marked as presented), or None when done."""
        with closing(connect(self.database)) as database:
            row = database.execute(_FIRST_UNANSWERED, (participant,)).fetchone()
            if row is None:
                return None
            pair, position, version, presented, gray, original, generated = row
            if presented is None:
                database.execute("UPDATE trials SET presented = ? WHERE participant = ? AND pair = ?",
                                 (time.time(), participant, pair))
        shown = {"original": original, "generated": generated}
        if self.protocol == "report":
            images = [shown[version]]
        else:  # 2afc: `version` is the one on the left
            images = [shown[version], shown[other_version(version)]]
        return Trial(pair, position, self.pair_count, gray, images)

    def record_answer(self, participant: str, pair: int, shown: list[str], choice: str) -> bool:
        """Store an answer; returns False if this pair was already answered (nothing changes).
        Only the trial `next_trial` is showing the participant can be answered (`NotShownNow`):
        the server, not the page, knows where each participant is.

        report: `shown` is the one coloured image shown, `choice` "original" or "colorized"
        ("generated", the report's word, too). 2afc: `shown` the two images in display order,
        `choice` the image picked as the real photo.
        """
        if not 1 <= pair <= self.pair_count:  # also keeps numbers SQLite cannot hold (64 bits) out of the query
            raise AnswerError(f"pair {pair} is not one of this participant's pairs")
        with closing(connect(self.database)) as database:
            row = database.execute(
                """SELECT t.version, t.presented, p.original, p.generated, EXISTS (
                       SELECT 1 FROM answers a WHERE a.participant = t.participant AND a.pair = t.pair)
                   FROM trials t JOIN pairs p ON p.id = t.pair
                   WHERE t.participant = ? AND t.pair = ?""", (participant, pair)).fetchone()
            if row is None:
                raise AnswerError(f"pair {pair} is not one of this participant's pairs")
            version, presented, original, generated, answered = row
            judged_original = self._judged(pair, version, {"original": original, "generated": generated}, shown, choice)
            if answered:
                return False
            not_shown = NotShownNow(f"pair {pair} is not the trial shown to this participant now; "
                                    "answer the one on the page (reload /poll)")
            if presented is None:
                raise not_shown
            now = time.time()
            # One statement, so no other answer of the participant can come between the check
            # that this is their current trial and the insert.
            cursor = database.execute(
                f"""INSERT OR IGNORE INTO answers SELECT ?, ?, ?, ?, ?, ?
                    WHERE (SELECT pair FROM ({_FIRST_UNANSWERED})) = ?""",
                (participant, pair, version, judged_original, max(0.0, now - presented), now, participant, pair))
            if cursor.rowcount == 1:
                return True
            if database.execute("SELECT 1 FROM answers WHERE participant = ? AND pair = ?",
                                (participant, pair)).fetchone():
                return False  # the same answer, sent twice at once: the other one was stored
            raise not_shown

    def _judged(self, pair: int, version: str, name_of: dict[str, str], shown: list[str], choice: str) -> str:
        """The version an answer judged original (report: the answer; 2afc: the image chosen), or
        `AnswerError` for an answer about other images or not one of the choices."""
        other = other_version(version)
        expected = [name_of[version]] if self.protocol == "report" else [name_of[version], name_of[other]]
        if list(shown) != expected:
            raise AnswerError(f"pair {pair}: the answer is not about the images this participant was shown")
        if self.protocol == "report":
            if choice not in ANSWER_WORDS:
                raise AnswerError("the answer must be original or colorized")
            return ANSWER_WORDS[choice]
        if choice not in expected:
            raise AnswerError(f"pair {pair}: the chosen image is not one of the two shown")
        return "original" if choice == name_of["original"] else "generated"

    def score(self, participant: str) -> tuple[int, int]:
        """(answers that were right, answers given) for one participant."""
        with closing(connect(self.database)) as database:
            rows = database.execute("SELECT version, answer FROM answers WHERE participant = ?", (participant,)).fetchall()
        return sum(is_right(self.protocol, version, answer) for version, answer in rows), len(rows)

    def answers(self) -> list[tuple]:
        """Every answer: (participant, pair, version, answer, seconds, answered), in the order given."""
        with closing(connect(self.database)) as database:
            return database.execute("SELECT * FROM answers ORDER BY answered").fetchall()

    def participants(self) -> list[str]:
        """Every participant, in the order they started (answers or not)."""
        with closing(connect(self.database)) as database:
            return [row[0] for row in database.execute("SELECT id FROM participants ORDER BY rowid")]

    def sources(self) -> dict[int, str]:
        with closing(connect(self.database)) as database:
            return dict(database.execute("SELECT id, source FROM pairs"))


