"""The Turing test's bar chart: per pair, how often each version was judged original."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no window: works on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def turing_chart(results, target) -> None:
    """Bar chart of a Turing test per pair (`pix2color.poll.Results`) into a path or file."""
    figure = turing_figure(results)
    figure.savefig(target, dpi=100, format="png")
    plt.close(figure)


def turing_figure(results):
    """The figure of `turing_chart`; the caller closes it.

    report protocol: for each pair, the share of its originals and of its colorizations judged
    original; 2afc: the share of answers fooled (the colorization chosen as the real photo).
    A share of 0 is labelled "0", a share without answers "n/a"; the legend is below the plot."""
    pairs = sorted(results.per_pair)
    figure, axis = plt.subplots(figsize=(max(6.0, 0.45 * len(pairs) + 2), 4.5), layout="constrained")
    positions = np.arange(len(pairs))

    def share(part, whole):
        return part / whole if whole else np.nan

    if results.protocol == "report":
        series = [
            (-0.2, 0.4, [share(results.per_pair[p][0][0], sum(results.per_pair[p][0])) for p in pairs],
             "original judged original", "tab:gray"),
            (0.2, 0.4, [share(results.per_pair[p][1][0], sum(results.per_pair[p][1])) for p in pairs],
             "colorization judged original", "tab:orange"),
        ]
        axis.set_ylabel("share judged original")
    else:
        series = [(0.0, 0.6, [share(results.per_pair[p][0][1], sum(results.per_pair[p][0])) for p in pairs],
                   "fooled (colorization chosen)", "tab:orange")]
        axis.set_ylabel("share fooled")
    for offset, width, values, label, color in series:
        axis.bar(positions + offset, values, width, label=label, color=color)
        for x, value in zip(positions + offset, values):
            if np.isnan(value):  # no answers: nothing to draw, so say so
                axis.text(x, 0.01, "n/a", rotation=90, ha="center", va="bottom", fontsize="small", color="dimgray")
            elif value == 0:  # a bar of height 0 is invisible too: label it
                axis.text(x, 0.01, "0", ha="center", va="bottom", fontsize="small", color="black")
    axis.axhline(0.5, color="black", linestyle=":", linewidth=1, label="50%")
    axis.set_xticks(positions, [str(p) for p in pairs])
    axis.set_xlabel("pair (n/a: no answers yet)")
    axis.set_ylim(0, 1)
    axis.set_title(f"Turing test ({results.protocol}): {results.total} answers")
    figure.legend(loc="outside lower center", ncols=len(series) + 1, fontsize="small")
    return figure
