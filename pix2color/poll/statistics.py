"""Counting a poll: the confusion matrix, who is counted, and how sure the numbers are.

- The report's confusion matrix (rows: what was shown, columns: what people answered) and its
  rates: TPR (originals judged original), TNR (colorizations judged colorized), FPR
  (colorizations judged original). 2afc: the share fooled (the colorization chosen as real).
- Exclusions a reviewer expects (`Rules`, all off by default: every answer counts, as in the
  report): participants who stopped part-way, who answered faster than a floor (their median
  seconds per answer), or who gave the same answer to every trial (2afc: chose the same side).
  How many participants each rule concerns is always counted, whether it is applied or not.
- Two 95% intervals for every rate. Wilson's treats every answer as independent; the participant
  bootstrap resamples participants with replacement (seeded), so the correlation between one
  person's answers widens it as it should. docs/web.md says which to publish.

Standard library and NumPy only: the results page and the score page count without TensorFlow.
"""

from __future__ import annotations

import csv
import math
import typing
from dataclasses import dataclass, field

import numpy as np

from pix2color.poll.storage import VERSIONS, Poll, PollError, is_right

REPORT_MATRIX = ((1292, 491), (988, 1231))  # the report's answers: rows truth, columns answer (original, generated)
FAST_FLOOR = 1.0  # seconds per answer (median) under which a participant is counted as too fast, unless told
RESAMPLES = 2000  # participant-bootstrap resamples
WORDS = {"original": "original", "generated": "colorized"}  # the stored versions, as people read them


@dataclass(frozen=True)
class Rules:
    """Who and what is counted. Every rule is off unless asked for: every answer counts, as in the report."""

    complete_only: bool = False  # leave out participants who stopped part-way
    min_seconds: float | None = None  # leave out participants whose median seconds per answer is below this
    exclude_constant: bool = False  # leave out participants who gave the same answer to every trial
    pairs: tuple[int, ...] = ()  # pairs left out (a mislabelled photo, say)

    @property
    def applied(self) -> dict[str, bool]:
        """Each exclusion rule (as `exclusions` names them) -> whether it leaves participants out."""
        return {"incomplete": self.complete_only, "fast": self.min_seconds is not None,
                "constant": self.exclude_constant}

    @property
    def floor(self) -> float:
        """The seconds per answer under which a participant counts as too fast."""
        return FAST_FLOOR if self.min_seconds is None else self.min_seconds

    def text(self) -> str:
        """The rules in plain words, one line."""
        words = {"incomplete": "who stopped part-way", "fast": f"who answered faster than {self.floor:g} s a trial",
                 "constant": "who gave the same answer to every trial"}
        applied = [words[rule] for rule, on in self.applied.items() if on]
        who = "participants " + ", ".join(applied) if applied else "no participant"
        pairs = ", ".join(map(str, self.pairs)) or "none"
        return f"left out: {who}; pairs left out: {pairs}"


@dataclass(frozen=True)
class Answer:
    """One stored answer, as counted. `shown`: report, the version shown; 2afc, the version on the
    left. `judged`: report, the answer; 2afc, the version picked as the real photo."""

    participant: int  # 1, 2, ... in the order participants started
    pair: int
    shown: str
    judged: str
    seconds: float | None

    def cell(self, protocol: str) -> tuple[int, int]:
        """(row, column) of the confusion matrix; 2afc answers all go on the first row."""
        return (0 if protocol == "2afc" else VERSIONS.index(self.shown)), VERSIONS.index(self.judged)

    def choice(self, protocol: str) -> str:
        """What the participant pressed: report, the answer; 2afc, the side."""
        if protocol == "report":
            return self.judged
        return "left" if self.judged == self.shown else "right"


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float] | None:
    """95% Wilson score interval of a proportion; None without trials."""
    if trials == 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def participant_bootstrap(successes: np.ndarray, trials: np.ndarray, resamples: int = RESAMPLES,
                          seed: int = 0) -> tuple[float, float] | None:
    """95% percentile interval of sum(successes) / sum(trials) when the participants (one entry
    each) are drawn again with replacement `resamples` times; None with fewer than 2 participants
    who answered. Resamples without any trial are dropped."""
    successes, trials = np.asarray(successes, np.int64), np.asarray(trials, np.int64)
    answered = trials > 0
    successes, trials = successes[answered], trials[answered]
    if len(trials) < 2:
        return None
    drawn = np.random.default_rng(seed).integers(0, len(trials), (resamples, len(trials)))
    totals = trials[drawn].sum(axis=1)
    shares = successes[drawn].sum(axis=1)[totals > 0] / totals[totals > 0]
    low, high = np.percentile(shares, [2.5, 97.5])
    return float(low), float(high)


@dataclass
class Rate:
    """A share of answers, with its counts per participant (for the bootstrap) when known."""

    name: str
    successes: int
    trials: int
    per_participant: tuple[tuple[int, int], ...] = ()  # (successes, trials) of each participant
    resamples: int = RESAMPLES
    seed: int = 0

    @property
    def value(self) -> float | None:
        return self.successes / self.trials if self.trials else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval (answers taken as independent)."""
        return wilson_interval(self.successes, self.trials)

    @property
    def bootstrap(self) -> tuple[float, float] | None:
        """The 95% participant-bootstrap interval; None without answers of two participants."""
        if not self.per_participant:
            return None
        successes, trials = zip(*self.per_participant)
        return participant_bootstrap(np.array(successes), np.array(trials), self.resamples, self.seed)

    def text(self) -> str:
        if not self.trials:
            return f"{self.name}: n/a (no answers)"
        low, high = self.interval
        line = f"{self.name}: {self.value:.4f} ({self.successes}/{self.trials}); 95% intervals: Wilson {low:.4f}-{high:.4f}"
        if self.bootstrap is None:
            reason = "answers of one participant" if self.per_participant else "no answers per participant"
            return f"{line}, participant bootstrap n/a ({reason})"
        low, high = self.bootstrap
        return f"{line}, participant bootstrap {low:.4f}-{high:.4f}"


def _empty() -> list[list[int]]:
    return [[0, 0], [0, 0]]


@dataclass
class Results:
    """Counted answers: `matrix[truth][answer]`, truth and answer in (original, colorized), overall,
    per pair and per participant (2afc: all on the first row, (real photo chosen, colorized chosen)).

    Made by `results` (from a poll: `exclusions` and `everyone` are then known) or `from_matrix`."""

    protocol: str
    matrix: list[list[int]]
    per_pair: dict[int, list[list[int]]] = field(default_factory=dict)
    per_participant: dict[int, list[list[int]]] = field(default_factory=dict)
    sources: dict[int, str] = field(default_factory=dict)
    rules: Rules = field(default_factory=Rules)
    pair_count: int = 0
    started: int = 0  # participants who started
    exclusions: dict[str, set[int]] = field(default_factory=dict)  # rule -> participants it concerns
    left_out: set[int] = field(default_factory=set)  # participants the rules leave out
    seconds: list[float] = field(default_factory=list)  # seconds of the counted answers
    everyone: Results | None = None  # every participant's answers, when the rules left some out
    resamples: int = RESAMPLES
    seed: int = 0

    @classmethod
    def from_matrix(cls, matrix, protocol: str = "report") -> Results:
        return cls(protocol, [list(row) for row in matrix])

    @property
    def total(self) -> int:
        return sum(map(sum, self.matrix))

    def rates(self) -> list[Rate]:
        cells = {"report": [("TPR (original judged original)", 0, 0), ("TNR (colorized judged colorized)", 1, 1),
                            ("FPR (colorized judged original)", 1, 0)],
                 "2afc": [("fooled (colorized chosen as the real photo)", 0, 1)]}[self.protocol]
        return [Rate(name, self.matrix[row][column], sum(self.matrix[row]),
                     tuple((m[row][column], sum(m[row])) for m in self.per_participant.values()),
                     self.resamples, self.seed)
                for name, row, column in cells]

    def headline(self) -> str:
        """The one figure people quote, against the published one."""
        rate = self.rates()[-1]
        share = "n/a" if rate.value is None else f"{100 * rate.value:.1f}%"
        if self.protocol == "report":
            return f"colorized images judged original: {share} (the report: 44.5%, TPR 0.7246, TNR 0.5548)"
        return f"% fooled: {share} (50% = people cannot tell; pix2pix's AMT colorization test: 22.5%)"

    def participants_line(self) -> str:
        """Who started, finished, and how many each exclusion rule concerns (applied or not)."""
        finished = self.started - len(self.exclusions.get("incomplete", ()))
        counts = [f"{len(self.exclusions.get('incomplete', ()))} stopped part-way",
                  f"{len(self.exclusions.get('fast', ()))} answered faster than {self.rules.floor:g} s a trial (median)",
                  f"{len(self.exclusions.get('constant', ()))} gave the same answer to every trial"]
        return (f"participants: {self.started} started, {finished} finished all {self.pair_count} pairs; "
                + ", ".join(counts))

    def seconds_line(self) -> str:
        if not self.seconds:
            return "seconds per answer: n/a (no answers)"
        low, median, high = np.percentile(self.seconds, [25, 50, 75])
        return f"seconds per answer: median {median:.1f} (quartiles {low:.1f}-{high:.1f})"

    def report(self) -> str:
        """The results as text: who is counted, the matrix, the rates with both intervals, per pair."""
        lines = [f"Turing test ({self.protocol} protocol): {counted(self.total, 'answer')}"
                 + (f" from {counted(len(self.per_participant), 'participant')}" if self.started else "")]
        if self.started:
            lines += [self.participants_line(), self.rules.text(), self.seconds_line()]
        if self.everyone is not None:
            lines += ["", f"== every participant: {counted(self.everyone.total, 'answer')} from "
                          f"{counted(len(self.everyone.per_participant), 'participant')} ==", *self.everyone.tables(),
                      "", f"== counted after the rules: {counted(self.total, 'answer')} from "
                          f"{counted(len(self.per_participant), 'participant')} "
                          f"({counted(len(self.left_out), 'participant')} left out) =="]
        lines += self.tables()
        if self.per_pair:
            lines += ["", *self.pair_table()]
        if self.per_participant:
            answers = sorted(sum(map(sum, matrix)) for matrix in self.per_participant.values())
            lines += ["", f"answers per participant: min {answers[0]}, median {answers[len(answers) // 2]}, "
                          f"max {answers[-1]}"]
        if self.started:
            lines.append(f"participant bootstrap: {self.resamples} resamples of the participants, seed {self.seed}")
        return "\n".join(lines)

    def tables(self) -> list[str]:
        """The confusion matrix (report) or the choice counts (2afc), the rates, the headline."""
        (oo, og), (go, gg) = self.matrix
        if self.protocol == "report":
            lines = ["", "                       answer", "truth         Original   Colorized",
                     f"Original    {oo:>10} {og:>11}", f"Colorized   {go:>10} {gg:>11}", ""]
        else:
            lines = ["", f"real photo chosen {oo}, colorized chosen {og}", ""]
        return lines + [rate.text() for rate in self.rates()] + [self.headline()]

    def pair_table(self) -> list[str]:
        """One row per pair, counts beside shares (0/1 must not read like 0/50)."""
        if self.protocol == "report":
            lines = ["pair  answers  original judged original  colorized judged original  photo"]
        else:
            lines = ["pair  answers  colorized chosen  photo"]
        for pair, ((oo, og), (go, gg)) in sorted(self.per_pair.items()):
            if self.protocol == "report":
                cells = f"{_share(oo, oo + og):<24}  {_share(go, go + gg):<25}"
            else:
                cells = f"{_share(og, oo + og):<16}"
            lines.append(f"{pair:>4}  {oo + og + go + gg:>7}  {cells}  {self.sources.get(pair, '')}")
        return lines

    def write_csv(self, target: typing.TextIO) -> None:
        """One row per pair of the counted answers, in the protocol's own columns, into a text file."""
        writer = csv.writer(target)
        if self.protocol == "report":
            writer.writerow(["pair", "photo", "original_judged_original", "original_judged_colorized",
                             "colorized_judged_original", "colorized_judged_colorized"])
            for pair, ((oo, og), (go, gg)) in sorted(self.per_pair.items()):
                writer.writerow([pair, self.sources.get(pair, ""), oo, og, go, gg])
        else:
            writer.writerow(["pair", "photo", "answers", "real_photo_chosen", "colorized_chosen"])
            for pair, ((real, colorized), _) in sorted(self.per_pair.items()):
                writer.writerow([pair, self.sources.get(pair, ""), real + colorized, real, colorized])


def counted(count: int, noun: str) -> str:
    """'1 answer', '2 answers'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _share(part: int, whole: int) -> str:
    """'3/5 (0.60)', or 'n/a (0 answers)'."""
    return "0/0 (n/a)" if whole == 0 else f"{part}/{whole} ({part / whole:.2f})"


def read_answers(poll: Poll) -> tuple[list[Answer], dict[str, int]]:
    """The poll's answers, participants numbered 1, 2, ... in the order they started, and the
    number of every participant who started, by their id."""
    number = {participant: index for index, participant in enumerate(poll.participants(), start=1)}
    answers = [Answer(number[who], pair, version, answer, seconds)
               for who, pair, version, answer, seconds, _ in poll.answers()]
    return answers, number


def exclusions(answers: list[Answer], participants: list[int], pair_count: int, protocol: str,
               floor: float) -> dict[str, set[int]]:
    """rule -> the participants it concerns: 'incomplete' (answered fewer than every pair), 'fast'
    (median seconds per answer below `floor`), 'constant' (two answers or more, all alike)."""
    mine: dict[int, list[Answer]] = {participant: [] for participant in participants}
    for answer in answers:
        mine[answer.participant].append(answer)
    found = {"incomplete": set(), "fast": set(), "constant": set()}
    for participant, given in mine.items():
        if len(given) < pair_count:
            found["incomplete"].add(participant)
        seconds = [answer.seconds for answer in given if answer.seconds is not None]
        if seconds and float(np.median(seconds)) < floor:
            found["fast"].add(participant)
        if len(given) >= 2 and len({answer.choice(protocol) for answer in given}) == 1:
            found["constant"].add(participant)
    return found


def tally(protocol: str, answers: list[Answer], pairs: list[int]) -> tuple[list, dict, dict, list[float]]:
    """(matrix, per pair, per participant, seconds) of `answers`; every pair in `pairs` gets a row."""
    matrix, per_pair, per_participant, seconds = _empty(), {pair: _empty() for pair in pairs}, {}, []
    for answer in answers:
        row, column = answer.cell(protocol)
        matrix[row][column] += 1
        per_pair[answer.pair][row][column] += 1
        per_participant.setdefault(answer.participant, _empty())[row][column] += 1
        if answer.seconds is not None:
            seconds.append(answer.seconds)
    return matrix, per_pair, per_participant, seconds


def results(poll: Poll, rules: Rules | tuple[int, ...] = Rules(), participant: str | None = None,
            resamples: int = RESAMPLES, seed: int = 0) -> Results:
    """Count the poll's answers under `rules` (a tuple: pairs left out, no other rule), or one
    participant's (`participant`, their id: their score page).

    PollError naming them if the rules leave out pairs the poll does not have (a typo would be
    counted silently)."""
    rules = rules if isinstance(rules, Rules) else Rules(pairs=tuple(rules))
    unknown = [str(pair) for pair in rules.pairs if not 1 <= pair <= poll.pair_count]
    if unknown:
        raise PollError(f"{', '.join(unknown)}: no such pair{'' if len(unknown) == 1 else 's'} "
                        f"(the poll's pairs are 1..{poll.pair_count})")
    answers, numbers = read_answers(poll)
    participants = list(numbers.values())
    if participant is not None:
        number = numbers.get(participant, 0)
        answers, participants = [a for a in answers if a.participant == number], [number]
    found = exclusions(answers, participants, poll.pair_count, poll.protocol, rules.floor)
    left_out = set().union(*(found[rule] for rule, on in rules.applied.items() if on))
    sources = poll.sources()
    pairs = [pair for pair in sorted(sources) if pair not in rules.pairs]
    shared = dict(sources=sources, rules=rules, pair_count=poll.pair_count, started=len(participants),
                  exclusions=found, resamples=resamples, seed=seed)

    def counted_results(kept: list[Answer], left: set[int]) -> Results:
        matrix, per_pair, per_participant, seconds = tally(poll.protocol, kept, pairs)
        return Results(poll.protocol, matrix, per_pair, per_participant, left_out=left, seconds=seconds, **shared)

    in_pairs = [answer for answer in answers if answer.pair not in rules.pairs]
    chosen = counted_results([answer for answer in in_pairs if answer.participant not in left_out], left_out)
    if left_out:
        chosen.everyone = counted_results(in_pairs, set())
    return chosen


def write_answers_csv(poll: Poll, rules: Rules, target: typing.TextIO) -> None:
    """One row per answer, for a reviewer's own analysis: participants numbered in the order they
    started, what was shown and answered in the protocol's words, the seconds taken, and which of
    the rules concern the participant (`left_out`: the rules applied)."""
    answers, numbers = read_answers(poll)
    found = exclusions(answers, list(numbers.values()), poll.pair_count, poll.protocol, rules.floor)
    sources = poll.sources()
    writer = csv.writer(target)
    shown, judged = ("shown", "answer") if poll.protocol == "report" else ("left", "chosen_as_real")
    writer.writerow(["participant", "pair", "photo", shown, judged, "correct", "seconds", "concerns", "left_out"])
    for answer in answers:
        concerns = [rule for rule in found if answer.participant in found[rule]]
        writer.writerow([answer.participant, answer.pair, sources.get(answer.pair, ""), WORDS[answer.shown],
                         WORDS[answer.judged], int(is_right(poll.protocol, answer.shown, answer.judged)),
                         "" if answer.seconds is None else f"{answer.seconds:.3f}", ";".join(concerns),
                         int(answer.pair in rules.pairs or any(rules.applied[rule] for rule in concerns))])
