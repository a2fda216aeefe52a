"""The training-budget study's figure and table (mi_lib.artifacts.budget): interpolation and its
detection against the number of training steps, at the authors' batch (beyond the paper)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mi_lib.plotting import COLORS
from mi_lib.tables import show_table


def _window_key(window: tuple[int, int]) -> str:
    return f"{window[0]}-{window[1]}"


def budget_rows(study: dict, window: tuple[int, int]) -> list[list[str]]:
    """One row per budget: steps, epochs, the k-sigma rate with its count and interval, and for
    `window` the AUROC of Hal and the share kept at 95% removed ('-' where nothing hallucinated)."""
    rec, rows = study["recipe"], []
    for steps, r in study["budgets"].items():
        m = r["metrics"]
        w = m["windows"].get(_window_key(window))
        rows.append([f"{steps:,}", f"{steps * rec.batch_size / rec.n_data:,.0f}",
                     f"{m['rate']:.3%} ({m['hallucinated']:,} of {m['n']:,}; 95% CI {m['low']:.3%} to {m['high']:.3%})",
                     f"{w['auroc']:.3f}" if w else "-", f"{w['kept']:.1%}" if w else "-"])
    return rows


def budget_table(study: dict, window: tuple[int, int]) -> None:
    """budget_rows as a table in the page."""
    show_table(["steps", "epochs", "beyond 6 sigma", f"AUROC (t = {window[1]}..{window[0]})",
                "kept at 95% removed"], budget_rows(study, window))


def budget_figure(study: dict, window: tuple[int, int], paper_steps: int = 20_000) -> plt.Figure:
    """Left: the k-sigma rate against training steps, with 95% intervals (a budget with no
    hallucination shows its interval's upper end as a downward triangle). Right: the AUROC of
    Hal over `window` and the share of in-support samples kept at 95% removed."""
    steps = np.array(list(study["budgets"]))
    ms = [r["metrics"] for r in study["budgets"].values()]
    rate = np.array([m["rate"] for m in ms])
    low, high = np.array([m["low"] for m in ms]), np.array([m["high"] for m in ms])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.8))
    seen = rate > 0
    ax.errorbar(steps[seen], rate[seen], yerr=[rate[seen] - low[seen], high[seen] - rate[seen]], fmt="o-",
                color=COLORS["hal"], capsize=3, label="beyond 6 sigma (95% CI)")
    if (~seen).any():
        ax.scatter(steps[~seen], high[~seen], marker="v", color=COLORS["hal"], label="none seen: upper end")
    ax.axvline(paper_steps, color="black", ls="--", lw=0.8, label=f"authors' budget ({paper_steps:,})")
    ax.set(xscale="log", yscale="log", xlabel="training steps (batch 10,000)", ylabel="share of draws",
           title="interpolation against training")
    ax.legend(fontsize=9, loc="lower left")  # the rate falls: clear of the data
    key = _window_key(window)
    have = [(s, m["windows"][key]) for s, m in zip(steps, ms, strict=True) if key in m["windows"]]
    if have:
        xs = [s for s, _ in have]
        ax2.plot(xs, [w["auroc"] for _, w in have], "o-", color=COLORS["model"], label="AUROC of Hal")
        ax2.plot(xs, [w["kept"] for _, w in have], "s-", color=COLORS["data"], label="kept at 95% removed")
    ax2.axhline(0.98, color="black", ls=":", lw=0.8, label="the paper's kept (98%)")
    ax2.set(xscale="log", ylim=(0, 1.02), xlabel="training steps (batch 10,000)",
            title=f"Hal over t = {window[1]}..{window[0]}")
    ax2.legend(fontsize=9, loc="lower right")
    fig.tight_layout()
    return fig
