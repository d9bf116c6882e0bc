"""Counting a poll as a reviewer expects: exclusions counted and applied, intervals that respect
who answered, counts beside shares, each protocol in its own columns, balanced trials."""

import csv
import io
import statistics as python_statistics
from contextlib import closing

import numpy as np
import pytest
from conftest import tiny_poll
from helpers import run_cli

from pix2color.poll import statistics, storage

PAIRS = 4


def answer(poll: storage.Poll, participant: str, choose, seconds: float) -> int:
    """Answer the participant's trials in their order with `choose(version shown / on the left)`,
    each taking `seconds`; returns how many were answered."""
    count = 0
    while (trial := poll.next_trial(participant)) is not None:
        choice = choose(trial)
        if choice is None:
            break
        poll.record_answer(participant, trial.pair, trial.images, choice)
        count += 1
    with closing(storage.connect(poll.database)) as database:
        database.execute("UPDATE answers SET seconds = ? WHERE participant = ?", (seconds, participant))
    return count


@pytest.fixture
def study(tmp_path):
    """A report poll of 4 pairs and four participants: one who finished, one who stopped after two
    answers, one who finished at 0.3 s an answer, one who answered "original" to every trial."""
    folder = tiny_poll(tmp_path / "poll", pairs=PAIRS)
    poll = storage.Poll(folder)
    people = [poll.new_participant() for _ in range(4)]
    alternating = iter(["original", "colorized"] * 10)
    answer(poll, people[0], lambda trial: next(alternating), seconds=4.0)
    stopping = iter(["colorized", "original", None])
    answer(poll, people[1], lambda trial: next(stopping), seconds=6.0)
    fast = iter(["colorized", "original", "original", "colorized"])
    answer(poll, people[2], lambda trial: next(fast), seconds=0.3)
    answer(poll, people[3], lambda trial: "original", seconds=3.0)
    return folder, people


def counted_in_sql(folder, left_out: set[str] = frozenset()) -> list[list[int]]:
    """The confusion matrix, counted by SQLite alone."""
    matrix = [[0, 0], [0, 0]]
    with closing(storage.connect(folder / storage.DATABASE)) as database:
        for participant, version, answer in database.execute("SELECT participant, version, answer FROM answers"):
            if participant not in left_out:
                matrix[storage.VERSIONS.index(version)][storage.VERSIONS.index(answer)] += 1
    return matrix


def groups_in_sql(folder) -> dict[str, set[str]]:
    with closing(storage.connect(folder / storage.DATABASE)) as database:
        everyone = [row[0] for row in database.execute("SELECT id FROM participants")]
        rows = {who: database.execute("SELECT answer, seconds FROM answers WHERE participant = ?", (who,)).fetchall()
                for who in everyone}
    return {"incomplete": {who for who, given in rows.items() if len(given) < PAIRS},
            "fast": {who for who, given in rows.items() if given and python_statistics.median(s for _, s in given) < 1.0},
            "constant": {who for who, given in rows.items() if len(given) >= 2 and len({a for a, _ in given}) == 1}}


def matrix_lines(matrix) -> str:
    (oo, og), (go, gg) = matrix
    return f"Original    {oo:>10} {og:>11}\nColorized   {go:>10} {gg:>11}"


def test_results_count_who_stopped_was_too_fast_or_answered_alike(study):
    """`turing results` says how many participants each rule concerns, and with the rules on, prints
    the tables for everyone and for those counted; every number is checked against SQLite."""
    folder, people = study
    groups = groups_in_sql(folder)
    assert groups == {"incomplete": {people[1]}, "fast": {people[2]}, "constant": {people[3]}}

    plain = run_cli("turing", "results", folder, timeout=120)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0] == "Turing test (report protocol): 14 answers from 4 participants"
    assert lines[1] == ("participants: 4 started, 3 finished all 4 pairs; 1 stopped part-way, 1 answered faster "
                        "than 1 s a trial (median), 1 gave the same answer to every trial")
    assert lines[2] == "left out: no participant; pairs left out: none"
    assert lines[3].startswith("seconds per answer: median ")
    assert matrix_lines(counted_in_sql(folder)) in plain.stdout and "every participant" not in plain.stdout

    strict = run_cli("turing", "results", folder, "--complete-only", "--min-seconds", 1, "--exclude-constant",
                     timeout=120)
    assert strict.returncode == 0, strict.stderr
    left_out = groups["incomplete"] | groups["fast"] | groups["constant"]
    assert ("left out: participants who stopped part-way, who answered faster than 1 s a trial, who gave the same "
            "answer to every trial; pairs left out: none") in strict.stdout
    everyone, after = strict.stdout.split("== counted after the rules: ")
    assert "== every participant: 14 answers from 4 participants ==" in everyone
    assert matrix_lines(counted_in_sql(folder)) in everyone
    kept = counted_in_sql(folder, left_out)
    assert after.startswith(f"{sum(map(sum, kept))} answers from 1 participant (3 participants left out) ==")
    assert matrix_lines(kept) in after


def test_the_per_pair_table_shows_counts_beside_shares(study):
    folder, _ = study
    results = statistics.results(storage.Poll(folder))
    table = results.pair_table()
    assert table[0] == "pair  answers  original judged original  colorized judged original  photo"
    for line, (pair, ((oo, og), (go, gg))) in zip(table[1:], sorted(results.per_pair.items())):
        assert line.split()[:2] == [str(pair), str(oo + og + go + gg)]
        assert f"{oo}/{oo + og}" in line and f"{go}/{go + gg}" in line


def test_each_protocol_writes_its_own_columns(tmp_path):
    """2afc: real photo chosen / colorized chosen per pair, never the report's matrix cells."""
    folder = tiny_poll(tmp_path / "poll", "2afc", pairs=PAIRS)
    poll = storage.Poll(folder)
    with closing(storage.connect(poll.database)) as database:
        generated = {row[0] for row in database.execute("SELECT generated FROM pairs")}
    for _ in range(3):  # each picks the colorization every time
        answer(poll, poll.new_participant(), lambda trial: next(n for n in trial.images if n in generated), 2.0)
    results = statistics.results(poll)
    text = io.StringIO()
    results.write_csv(text)
    rows = list(csv.reader(io.StringIO(text.getvalue())))
    assert rows[0] == ["pair", "photo", "answers", "real_photo_chosen", "colorized_chosen"]
    assert [row[2:] for row in rows[1:]] == [["3", "0", "3"]] * PAIRS
    assert "% fooled: 100.0%" in results.report()
    answers = io.StringIO()
    statistics.write_answers_csv(poll, statistics.Rules(), answers)
    rows = list(csv.DictReader(io.StringIO(answers.getvalue())))
    assert len(rows) == 3 * PAIRS and {row["chosen_as_real"] for row in rows} == {"colorized"}
    assert {row["correct"] for row in rows} == {"0"} and {row["participant"] for row in rows} == {"1", "2", "3"}


def test_the_answers_csv_says_who_each_rule_concerns(study):
    folder, _ = study
    text = io.StringIO()
    statistics.write_answers_csv(storage.Poll(folder), statistics.Rules(complete_only=True), text)
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))
    assert len(rows) == 14
    concerns = {row["participant"]: (row["concerns"], row["left_out"]) for row in rows}
    assert concerns == {"1": ("", "0"), "2": ("incomplete", "1"), "3": ("fast", "0"), "4": ("constant", "0")}


def test_the_participant_bootstrap_widens_the_interval_when_answers_cluster_by_person():
    """20 people x 10 answers at a share of 0.5 overall: independent answers give both intervals
    about as wide; people who each always answer alike make the bootstrap interval far wider than
    Wilson's, which cannot see it. Seeded: the same interval twice."""
    rng = np.random.default_rng(0)
    independent = rng.integers(0, 2, (20, 10)).sum(axis=1)
    clustered = np.repeat([0, 10], 10)
    trials = np.full(20, 10)
    for successes, wide in ((independent, False), (clustered, True)):
        low, high = statistics.participant_bootstrap(successes, trials, seed=1)
        wilson_low, wilson_high = statistics.wilson_interval(int(successes.sum()), 200)
        ratio = (high - low) / (wilson_high - wilson_low)
        assert (ratio > 2.5) if wide else (0.6 < ratio < 1.4), ratio
        assert statistics.participant_bootstrap(successes, trials, seed=1) == (low, high)
    assert statistics.participant_bootstrap(np.array([3]), np.array([5])) is None  # one participant


@pytest.mark.parametrize("pairs", [4, 5])
def test_trials_are_balanced_across_participants(tmp_path, pairs):
    """Participants come in twos: the second sees every pair in the version the first did not, so
    each pair is shown as often in each version; with an odd number, the extra original goes to
    every other participant."""
    poll = storage.Poll(tiny_poll(tmp_path / "poll", pairs=pairs))
    people = [poll.new_participant() for _ in range(6)]
    with closing(storage.connect(poll.database)) as database:
        shown = {who: dict(database.execute("SELECT pair, version FROM trials WHERE participant = ?", (who,)))
                 for who in people}
    originals = [list(shown[who].values()).count("original") for who in people]
    assert originals == [(pairs + 1) // 2, pairs // 2] * 3
    for first, second in zip(people[::2], people[1::2]):
        assert all(shown[first][pair] != shown[second][pair] for pair in range(1, pairs + 1))
    orders = {tuple(poll.next_trial(who).pair for _ in range(1)) for who in people}
    assert len(orders) > 1  # each their own random order


def test_results_options_out_of_range_are_one_line(study):
    """A bootstrap of 10^20 resamples would need exabytes: refused before any work, as any bad value is."""
    folder, _ = study
    for args, words in ((["--bootstrap", "99999999999999999999"], "--bootstrap"), (["--min-seconds", "nan"], "--min-seconds"),
                        (["--bootstrap", "0"], "--bootstrap")):
        refused = run_cli("turing", "results", folder, *args, timeout=120)
        assert refused.returncode == 2 and words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
