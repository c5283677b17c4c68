"""Bar figures for the benchmark pages, drawn to be read at the width the docs site shows them.

One figure answers one question (say "transposed convolution, forward pass"): one group of
horizontal bars per named configuration, one bar per implementation, the legend below the axis, outside the data.
The size (7 in wide at 100 dpi, 700 px: the content column of the docs site measured about
690 px in a 1280 px wide browser window) and the fonts (11 pt and up) are chosen so that the
figure is shown at about its own size, not shrunk until its text is unreadable::

    from _plot import bar_figure

    rows = [("1. DCGAN\\n32×32, 128→64, k4 s2", {"lax": 29.0, "unitconv": 80.7}), ...]
    bar_figure(rows, ["lax", "unitconv"], Path("docs/perf.png"), "Transposed convolution, forward")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

WIDTH_IN = 7.0  # 700 px at DPI: about the width of the docs site's content column
DPI = 100
FONT_PT = 11
#: One colour per implementation, the same in every figure (matplotlib's default cycle, fixed here).
COLOURS = {
    "lax": "#1f77b4",
    "brainunit": "#ff7f0e",
    "unitconv": "#2ca02c",
    "torch": "#d62728",
    "scipy": "#9467bd",
    "numpy": "#8c564b",
}
_SPARE = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def bar_figure(
    rows: Sequence[tuple[str, Mapping[str, float]]],
    columns: Sequence[str],
    path: str | Path,
    title: str,
    *,
    xlabel: str = "useful GFLOP/s (higher is better)",
    log: bool = True,
) -> Path:
    """Draw one horizontal grouped bar chart and write it to ``path`` as a PNG.

    Parameters
    ----------
    rows
        ``(label, values)`` per configuration, top to bottom; ``label`` names the configuration
        (it may hold a line break), ``values`` maps a column name to its value. A column missing
        from ``values`` leaves a gap.
    columns
        The implementations, in legend order; each is one bar per row.
    path
        Where the PNG goes.
    title
        The question the figure answers, above the axes.
    xlabel
        The value axis's label.
    log
        Logarithmic value axis (for values spanning orders of magnitude).

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    n_rows, n_cols = len(rows), len(columns)
    lines = max((label.count("\n") + 1 for label, _ in rows), default=1)
    height = 1.5 + n_rows * max(0.23 * lines, 0.115 * n_cols)  # 5.2 in for 8 rows of two-line labels and 4 bars
    spare = iter(_SPARE)
    colours = {c: COLOURS.get(c) or next(spare) for c in columns}
    with plt.rc_context({"font.size": FONT_PT, "axes.titlesize": FONT_PT + 1, "legend.fontsize": FONT_PT}):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
        bar = 0.72 / n_cols
        for j, column in enumerate(columns):
            ys = [i + (j - (n_cols - 1) / 2) * bar for i in range(n_rows)]
            vals = [values.get(column, float("nan")) for _, values in rows]
            ax.barh(ys, vals, height=bar * 0.95, label=column, color=colours[column])
        ax.set_yticks(range(n_rows), [label for label, _ in rows])
        ax.invert_yaxis()  # first row on top, as in the table
        ax.set_xlabel(xlabel)
        if log:
            ax.set_xscale("log")
        ax.grid(axis="x", which="major", alpha=0.4)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        fig.suptitle(title, fontsize=FONT_PT + 2)
        fig.legend(loc="outside lower center", ncols=n_cols, frameon=False)
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
    return path
