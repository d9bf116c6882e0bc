"""The report's human "Turing test" (section VI.B.1), as a poll anyone can run.

A poll is a folder:

    poll.sqlite     pairs, participants, their trials and answers (SQLite, WAL, synchronous=FULL)
    images/         every image under an opaque random name (PNG, no metadata)
    secret.key      signs the participants' cookies, so a restarted server knows them

Two protocols, fixed when the poll is built:

- report: each trial shows the grayscale photo and ONE coloured version, the original or the
  model's; the participant answers "original" or "generated". Each participant sees every pair
  once, in their own random order, half of them with the original (seeded per participant).
  Results: the confusion matrix of the report (rows: truth, columns: answer), TPR = original
  judged original, TNR = generated judged generated, FPR = generated judged original.
- 2afc (two-alternative forced choice, as pix2pix's and Zhang et al.'s AMT tests): both versions
  side by side in random order, "which is the real photo?". Results: % fooled (the generated one
  chosen), 50% meaning people cannot tell.

Nothing a participant sees tells the versions apart but their pixels: all images of a pair are
written by the same encoder, at the same size, without metadata, under random names, and the two
colour versions stored uncompressed (so files of the same length and chunks); the page and the
answer carry only those names, and the server sends both with the same headers. Taking part and
counting results need only the standard library (sqlite3, secrets, random); building a poll
colorizes photos with a trained model.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import secrets
import shutil
import sqlite3
import stat
import time
import typing
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pix2color.colorize import IMAGE_SUFFIXES
from pix2color.loading import load_network
from pix2color.outputs import check_output_folder
from pix2color.photos import FullResolutionColorizer, ImageError, read_image
from pix2color.run_folder import is_run_or_poll_folder

PROTOCOLS = ("report", "2afc")
VERSIONS = ("original", "generated")
DATABASE = "poll.sqlite"
SECRET_FILE = "secret.key"
IMAGES = "images"
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
REPORT_MATRIX = ((1292, 491), (988, 1231))  # the report's answers: rows truth, columns answer (original, generated)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY,              -- 1..n, as shown in the results
    source TEXT NOT NULL,                -- the photo it was made from (results only, never shown)
    gray TEXT NOT NULL UNIQUE,           -- image names (opaque)
    original TEXT NOT NULL UNIQUE,
    generated TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS participants (id TEXT PRIMARY KEY, created REAL NOT NULL);
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


class PollError(ValueError):
    """A poll cannot be built, opened or answered as asked; the message says why, in one line."""


class AnswerError(PollError):
    """An answer the poll does not accept (unknown pair, or an image the participant was not shown)."""


class NotShownNow(AnswerError):
    """An answer about one of the participant's pairs other than the trial they are being shown:
    each participant answers their trials in their order, one at a time, as the server shows them."""


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


# --------------------------------------------------------------------------- building


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


def list_photos(photos: str | Path, log=print) -> list[str]:
    """The images under `photos` (recursive), leaving out pix2color run and poll folders as
    training does: their plots and poll images are pictures pix2color drew, not photos."""
    from pix2color.data import list_image_files  # pix2color.data loads TensorFlow: only when building a poll

    if not Path(photos).is_dir():
        raise PollError(f"--photos {photos}: not a folder")
    reason = is_run_or_poll_folder(photos)
    if reason:
        raise PollError(f"--photos {photos}: {reason}, not a folder of photos")

    def skip_folder(path: str) -> bool:
        why = is_run_or_poll_folder(path)
        if why:
            log(f"left out {path}: {why}, not photos")
        return why is not None

    return list_image_files(photos, IMAGE_SUFFIXES, skip_folder=skip_folder)


def choose_photos(paths: list[str], count: int, seed: int) -> list[str]:
    if len(paths) < count:
        raise PollError(f"{count} pairs asked for, but only {len(paths)} photos found")
    return sorted(random.Random(seed).sample(sorted(paths), count))


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
        """A new anonymous participant with their own order and, balanced half and half, versions."""
        participant = secrets.token_urlsafe(16)
        rng = random.Random(f"{self.seed}:{participant}")
        order = list(range(1, self.pair_count + 1))
        rng.shuffle(order)
        versions = [VERSIONS[index % 2] for index in range(self.pair_count)]
        rng.shuffle(versions)
        with closing(connect(self.database)) as database:
            database.execute("BEGIN")
            database.execute("INSERT INTO participants VALUES (?, ?)", (participant, time.time()))
            database.executemany(
                "INSERT INTO trials (participant, position, pair, version) VALUES (?, ?, ?, ?)",
                [(participant, position, pair, version) for position, (pair, version) in enumerate(zip(order, versions))],
            )
            database.execute("COMMIT")
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
            images = [shown[version], shown[VERSIONS[1 - VERSIONS.index(version)]]]
        return Trial(pair, position, self.pair_count, gray, images)

    def record_answer(self, participant: str, pair: int, shown: list[str], choice: str) -> bool:
        """Store an answer; returns False if this pair was already answered (nothing changes).
        Only the trial `next_trial` is showing the participant can be answered (`NotShownNow`):
        the server, not the page, knows where each participant is.

        report: `shown` is the one coloured image shown, `choice` "original" or "generated".
        2afc: `shown` the two images in display order, `choice` the image picked as the real photo.
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
            name_of = {"original": original, "generated": generated}
            other = VERSIONS[1 - VERSIONS.index(version)]
            expected = [name_of[version]] if self.protocol == "report" else [name_of[version], name_of[other]]
            if list(shown) != expected:
                raise AnswerError(f"pair {pair}: the answer is not about the images this participant was shown")
            if self.protocol == "report":
                if choice not in VERSIONS:
                    raise AnswerError(f"the answer must be one of {', '.join(VERSIONS)}")
                judged_original = choice
            else:
                if choice not in expected:
                    raise AnswerError(f"pair {pair}: the chosen image is not one of the two shown")
                judged_original = "original" if choice == original else "generated"
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

    def score(self, participant: str) -> tuple[int, int]:
        """(answers that were right, answers given) for one participant."""
        with closing(connect(self.database)) as database:
            rows = database.execute("SELECT version, answer FROM answers WHERE participant = ?", (participant,)).fetchall()
        if self.protocol == "report":
            right = sum(version == answer for version, answer in rows)
        else:
            right = sum(answer == "original" for _, answer in rows)  # picked the real photo
        return right, len(rows)

    def answers(self) -> list[tuple]:
        """Every answer: (participant, pair, version, answer, seconds, answered)."""
        with closing(connect(self.database)) as database:
            return database.execute("SELECT * FROM answers ORDER BY answered").fetchall()

    def sources(self) -> dict[int, str]:
        with closing(connect(self.database)) as database:
            return dict(database.execute("SELECT id, source FROM pairs"))


# --------------------------------------------------------------------------- results


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion; None without trials."""
    if trials == 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Rate:
    name: str
    successes: int
    trials: int

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.successes, self.trials)

    def text(self) -> str:
        if not self.trials:
            return f"{self.name}: n/a (no answers)"
        low, high = self.interval
        return f"{self.name}: {self.value:.4f} ({self.successes}/{self.trials}; 95% Wilson interval {low:.4f}-{high:.4f})"


@dataclass
class Results:
    """The poll's results; `matrix[truth][answer]` counts, truth and answer in (original, generated)."""

    protocol: str
    matrix: list[list[int]]
    per_pair: dict[int, list[list[int]]] = field(default_factory=dict)
    per_participant: dict[str, int] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    excluded: tuple[int, ...] = ()

    @classmethod
    def from_matrix(cls, matrix, protocol: str = "report") -> Results:
        return cls(protocol, [list(row) for row in matrix])

    @property
    def total(self) -> int:
        return sum(map(sum, self.matrix))

    def rates(self) -> list[Rate]:
        (oo, og), (go, gg) = self.matrix
        if self.protocol == "2afc":
            return [Rate("fooled (generated chosen as the real photo)", og, oo + og)]
        return [
            Rate("TPR (original judged original)", oo, oo + og),
            Rate("TNR (generated judged generated)", gg, go + gg),
            Rate("FPR (generated judged original)", go, go + gg),
        ]

    def report(self) -> str:
        """The results as text: the confusion matrix in the report's layout, rates, per pair."""
        (oo, og), (go, gg) = self.matrix
        lines = [f"Turing test ({self.protocol} protocol): {counted(self.total, 'answer')} from "
                 f"{counted(len(self.per_participant), 'participant')}"
                 + (f"; pairs left out: {', '.join(map(str, self.excluded))}" if self.excluded else "")]
        if self.protocol == "report":
            lines += [
                "",
                "                       answer",
                "truth         Original   Generated",
                f"Original    {oo:>10} {og:>11}",
                f"Generated   {go:>10} {gg:>11}",
                "",
            ]
        else:
            lines += ["", f"real photo chosen {oo}, generated chosen {og}", ""]
        lines += [rate.text() for rate in self.rates()]
        fpr = self.rates()[-1]
        if self.protocol == "report":
            judged = "n/a" if fpr.value is None else f"{100 * fpr.value:.1f}%"
            lines.append(f"generated images judged original: {judged} (the report: 44.5%, TPR 0.7246, TNR 0.5548)")
        else:
            fooled = "n/a" if fpr.value is None else f"{100 * fpr.value:.1f}%"
            lines.append(f"% fooled: {fooled} (50% = people cannot tell; pix2pix's AMT colorization test: 22.5%)")
        if self.per_pair:
            lines += ["", "pair  answers  " + ("orig->orig  gen->orig" if self.protocol == "report" else "fooled") + "  photo"]
            for pair, ((poo, pog), (pgo, pgg)) in sorted(self.per_pair.items()):
                count = poo + pog + pgo + pgg
                if self.protocol == "report":
                    cells = f"{_share(poo, poo + pog):>10}  {_share(pgo, pgo + pgg):>9}"
                else:
                    cells = f"{_share(pog, poo + pog):>6}"
                lines.append(f"{pair:>4}  {count:>7}  {cells}  {self.sources.get(pair, '')}")
        if self.per_participant:
            counts = sorted(self.per_participant.values())
            lines += ["", f"answers per participant: min {counts[0]}, median {counts[len(counts) // 2]}, max {counts[-1]}"]
        return "\n".join(lines)

    def write_csv(self, target: typing.TextIO) -> None:
        """One row per pair: the four cells of its confusion matrix, and the photo (2afc: row 1 is
        real photo chosen / generated chosen, row 2 is empty), into a text file."""
        writer = csv.writer(target)
        writer.writerow(["pair", "photo", "original_judged_original", "original_judged_generated",
                         "generated_judged_original", "generated_judged_generated"])
        for pair, ((poo, pog), (pgo, pgg)) in sorted(self.per_pair.items()):
            writer.writerow([pair, self.sources.get(pair, ""), poo, pog, pgo, pgg])


def counted(count: int, noun: str) -> str:
    """'1 answer', '2 answers'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _share(part: int, whole: int) -> str:
    return "n/a" if whole == 0 else f"{part / whole:.2f}"


def results(poll: Poll, exclude: tuple[int, ...] = (), participant: str | None = None) -> Results:
    """Count the poll's answers (or one participant's) into a confusion matrix (overall, per
    pair, per participant).

    2afc answers are counted on the first row: (real photo chosen, generated chosen). PollError
    naming them if `exclude` holds pairs the poll does not have (a typo would be counted silently)."""
    unknown = [str(pair) for pair in exclude if not 1 <= pair <= poll.pair_count]
    if unknown:
        raise PollError(f"--exclude {', '.join(unknown)}: no such pair{'' if len(unknown) == 1 else 's'} "
                        f"(the poll's pairs are 1..{poll.pair_count})")

    def empty():
        return [[0, 0], [0, 0]]

    matrix, per_pair, per_participant = empty(), {}, {}
    sources = poll.sources()
    for pair in sources:
        if pair not in exclude:
            per_pair[pair] = empty()
    for who, pair, version, answer, _, _ in poll.answers():
        if pair in exclude or participant not in (None, who):
            continue
        truth = 0 if poll.protocol == "2afc" else VERSIONS.index(version)
        judged = VERSIONS.index(answer)
        matrix[truth][judged] += 1
        per_pair[pair][truth][judged] += 1
        per_participant[who] = per_participant.get(who, 0) + 1
    return Results(poll.protocol, matrix, per_pair, per_participant, sources, tuple(exclude))


def build_poll(
    model: str,
    photos: str | Path,
    out: str | Path,
    pairs: int = 20,
    protocol: str = "report",
    mode: str = "deterministic",
    seed: int = 0,
    max_side: int = 768,
    log=print,
) -> Path:
    """Pick `pairs` photos (seeded), colorize each with `model`, and write the poll folder.

    Photos larger than `max_side` are first scaled down (the original and the colorization are
    then made from the same pixels). The report's poll used its final model; `mode` is the
    inference mode of `pix2color.loading`.
    """
    if protocol not in PROTOCOLS:
        raise PollError(f"--protocol must be one of {', '.join(PROTOCOLS)} (got {protocol!r})")
    check_poll_folder(out)
    chosen = choose_photos(list_photos(photos, log), pairs, seed)
    network = load_network(model, mode)
    recipe = FullResolutionColorizer(network.predict_ab, network.image_size)
    prepared = []
    for path in chosen:
        try:
            rgb = read_image(path)
        except ImageError as error:
            raise PollError(str(error)) from None
        image = Image.fromarray(rgb)
        if max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            rgb = np.asarray(image)
        prepared.append(PollImages(str(path), recipe.grayscale(rgb), rgb, recipe.colorize(rgb)))
        log(f"pair {len(prepared)}: {path}")
    return write_poll(out, prepared, protocol, seed, {"model": str(model), "mode": mode, "photos": str(photos)})
