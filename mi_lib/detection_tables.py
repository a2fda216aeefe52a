"""Tables of the detection chapter and its studies (paper Sec. 5): operating points beside the
paper's, Hal's window sweeps, and the banks' per-window metrics, with cells short enough for
the page's text column.
"""

from __future__ import annotations

import torch

from mi_lib.detection import auroc_interval, operating_point
from mi_lib.metrics import Rate
from mi_lib.tables import show_table


def ci(r: Rate) -> str:
    """A rate in a short cell: 'rate of n (low to high)', the 95% Wilson interval in percent."""
    return f"{r.rate:.1%} of {r.n:,} ({100 * r.low:.1f} to {100 * r.high:.1f})"


def window_name(window: tuple[int, int]) -> str:
    """A window (t_lo, t_hi) as the page writes it, from the noisier end: 't_hi..t_lo'."""
    return f"{window[1]}..{window[0]}"


def operating_table(ops: dict[str, dict], paper: dict[str, tuple[float, float]],
                    windows: dict[str, tuple[int, int]] | None = None, titles: dict[str, str] | None = None) -> None:
    """One row per data set (named by `titles`, else by its key): the window, the paper's
    (removed, kept), ours at the threshold that removes 95% of the hallucinations, the removal
    rate at the paper's kept rate, and the AUROC (with its bootstrap interval where the op holds
    one as "auroc_ci")."""
    rows = []
    for name, r in ops.items():
        auc = f"{r['auroc']:.3f}"
        if "auroc_ci" in r:
            auc += f" ({r['auroc_ci'][0]:.3f} to {r['auroc_ci'][1]:.3f})"
        window = [window_name(windows[name])] if windows else []
        rows.append([(titles or {}).get(name, name), *window, f"{paper[name][0]:.0%} / {paper[name][1]:.0%}",
                     ci(r["removed"]), ci(r["kept"]), f"{r['removed_at_kept'].rate:.1%}", auc])
    show_table(["data", *(["window t"] if windows else []), "paper: removed / kept", "ours: removed",
                "ours: kept", "removed at the paper's kept", "AUROC"], rows)


def window_ops(hals: dict[tuple[int, int], torch.Tensor], y: torch.Tensor, removed: float = 0.95,
               kept: float = 0.95, n_boot: int = 0, seed: int = 0) -> dict[tuple[int, int], dict]:
    """The operating point of Hal over each window (paper Sec. 5), with the AUROC's bootstrap
    interval as "auroc_ci" when n_boot > 0."""
    out = {}
    for w, h in hals.items():
        op = operating_point(h, y, removed=removed, kept=kept)
        if n_boot:
            op["auroc_ci"] = auroc_interval(h, y, n_boot=n_boot, seed=seed)
        out[w] = op
    return out


def window_table(ops: dict[tuple[int, int], dict], chosen: tuple[int, int] | None = None,
                 kept: str = "95%") -> None:
    """One row per window: the AUROC (with its interval if known), the share kept at 95%
    removed, and the share removed at `kept` kept; the chosen window marked '(paper)'."""
    rows = []
    for w, r in ops.items():
        auc = f"{r['auroc']:.3f}"
        if "auroc_ci" in r:
            auc += f" ({r['auroc_ci'][0]:.3f} to {r['auroc_ci'][1]:.3f})"
        rows.append([window_name(w) + (" (paper)" if w == chosen else ""), auc, ci(r["kept"]),
                     f"{r['removed_at_kept'].rate:.1%}"])
    show_table(["window t", "AUROC", "kept at 95% removed", f"removed at {kept} kept"], rows)


def bank_windows(bank: dict) -> dict[tuple[int, int], dict]:
    """A protocol bank's metrics per window, {(t_lo, t_hi): metrics}, as the build counted them
    over every draw of the bank (mi_lib.artifacts.protocol)."""
    return {w: bank["metrics"]["windows"][f"{w[0]}-{w[1]}"] for w in bank["recipe"].windows}


def bank_window_table(banks: dict[str, dict], paper: dict[str, tuple[float, float]],
                      titles: dict[str, str]) -> None:
    """The protocol banks' AUROC, kept at 95% removed and removed at the paper's kept, by
    window, one row per data set and window."""
    rows = []
    for name, bank in banks.items():
        key = f"removed_at_{paper[name][1]:.0%}_kept".replace("%", "")
        rows += [[titles[name], window_name(w), f"{m['auroc']:.3f}", f"{m['kept']:.1%}", f"{m[key]:.1%}"]
                 for w, m in bank_windows(bank).items()]
    show_table(["data", "window t", "AUROC", "kept at 95% removed", "removed at the paper's kept"], rows)
