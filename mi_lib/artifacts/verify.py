"""Checks of the shipped artifacts: ``python -m mi_lib.artifacts verify [NAME ...]``.

Each artifact passes three checks, the last where it is cheap:

1. its manifest NAME.json is what the build wrote: its sha256 matches its line in
   manifests.sha256, so an edited metric (or recipe, or command) shows even though the data
   files are untouched;
2. every file it lists matches the sha256 and size the manifest records;
3. toy models: the metrics are recomputed from the stored losses and sample bank (the first
   losses, the mean of the last 100, and the count and rate of hallucinated samples).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from mi_lib.artifacts.manifest import ARTIFACT_DIR, REGISTRY, load_manifest, recorded_digests, sha256


def listed_files(manifest: dict) -> dict[str, dict]:
    """{file name: {"sha256", "bytes"}} of every data file a manifest lists."""
    if "files" in manifest:
        return dict(manifest["files"])
    return {manifest["file"]: {"sha256": manifest["sha256"], "bytes": manifest.get("bytes")}}


def recomputed_toy_metrics(manifest: dict, art_dir: Path) -> dict:
    """The metrics a toy model's manifest records, recomputed from its stored losses and samples."""
    from mi_lib.artifacts import ToyRecipe
    from mi_lib.metrics import hallucination_rate

    state = torch.load(art_dir / manifest["file"], map_location="cpu", weights_only=True)
    hal = hallucination_rate(state["samples"], ToyRecipe(**manifest["recipe"]).mixture())
    losses = state["losses"].double()
    return {"first_losses": losses[: len(manifest["metrics"]["first_losses"])].tolist(),
            "final_loss_mean_last_100": float(losses[-100:].mean()),
            "hallucination_rate": hal.rate, "hallucinated": hal.count, "n_samples": hal.n}


def _differs(recorded: object, computed: object) -> bool:
    if isinstance(computed, list):
        return not isinstance(recorded, list) or len(recorded) != len(computed) or any(
            _differs(r, c) for r, c in zip(recorded, computed, strict=True))
    if isinstance(computed, float):
        return not isinstance(recorded, int | float) or not math.isclose(recorded, computed, rel_tol=1e-6)
    return recorded != computed


def problems(name: str, art_dir: str | Path = ARTIFACT_DIR, kind: str | None = None) -> list[str]:
    """What is wrong with artifact `name` in art_dir (an empty list: nothing). `kind` is its
    kind in mi_lib.artifacts.build.KINDS ('toy' gets its metrics recomputed)."""
    art_dir = Path(art_dir)
    try:
        manifest = load_manifest(name, art_dir)
    except ValueError as exc:
        return [str(exc)]
    found = []
    recorded = recorded_digests(art_dir).get(f"{name}.json")
    if recorded is None:
        found.append(f"{name}.json is not recorded in {REGISTRY}")
    elif recorded != sha256(art_dir / f"{name}.json"):
        found.append(f"{name}.json was changed after its build: its sha256 differs from {REGISTRY}'s")
    for fname, meta in listed_files(manifest).items():
        path = art_dir / fname
        if not path.is_file():
            found.append(f"{fname} is missing")
        elif sha256(path) != meta["sha256"] or meta.get("bytes") not in (None, path.stat().st_size):
            found.append(f"{fname} does not match the sha256 in {name}.json")
    if kind == "toy" and not found:
        computed = recomputed_toy_metrics(manifest, art_dir)
        wrong = [k for k, v in computed.items() if _differs(manifest["metrics"].get(k), v)]
        if wrong:
            found.append(f"its metrics {', '.join(wrong)} differ from those recomputed from {manifest['file']}")
    return found


def verify_all(names: list[str], kinds: dict[str, str], art_dir: str | Path = ARTIFACT_DIR) -> dict[str, list[str]]:
    """{name: problems(name)} for each of `names` (kinds: name -> kind), and an entry for each
    manifest recorded in manifests.sha256 whose artifact is not among the names at all."""
    out = {name: problems(name, art_dir, kinds.get(name)) for name in names}
    for fname in recorded_digests(art_dir):
        name = fname.removesuffix(".json")
        if name not in kinds:
            out[name] = [f"{REGISTRY} records {fname}, which no kind of artifact builds"]
    return out
