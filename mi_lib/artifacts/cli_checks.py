"""What ``python -m mi_lib.artifacts`` checks before any long work, each failure one ValueError
whose message the command prints as one line: the names (with a hint where a kind or a near
name was meant), the device, the number of jobs, and whether a build would replace what ships.
Also the ``verify`` subcommand's report."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import torch

from mi_lib.artifacts.build import KINDS, kind_of
from mi_lib.artifacts.manifest import ARTIFACT_DIR, REGISTRY, record_manifest, recorded_digests
from mi_lib.artifacts.verify import problems, verify_all
from mi_lib.checks import check_positive_int

# The groups a name may stand for: each builds every artifact of its kind.
GROUPS = {"toys": "toy", "collapse": "collapse", "hands": "hands", "protocol": "protocol"}
ORDER = ("toy", "budget", "protocol", "collapse", "hands", "shapes", "shapes_windows")  # --all: quick kinds first


def every_name() -> list[str]:
    """Every artifact's name, kind by kind."""
    return [n for k in KINDS.values() for n in k.names]


def unknown(name: str) -> str:
    """Why `name` is not something to build, with what was probably meant."""
    if name in KINDS:
        group = next((g for g, kind in GROUPS.items() if kind == name), None)
        names = KINDS[name].names
        hint = f"the group '{group}' builds all {len(names)} of them" if group else f"its artifacts: {', '.join(names)}"
        return f"'{name}' is a kind of artifact, not an artifact; {hint}"
    near = difflib.get_close_matches(name, every_name() + list(GROUPS), n=3)
    hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
    return f"no artifact or group is called {name!r}{hint}; 'python -m mi_lib.artifacts list' shows them all"


def resolve(names: Sequence[str], every: bool) -> list[str]:
    """The artifacts to build: every one (quick kinds first) or the named ones, groups expanded."""
    if every:
        return [n for kind in ORDER for n in KINDS[kind].names]
    out = []
    for name in names:
        if name in GROUPS:
            out += KINDS[GROUPS[name]].names
            continue
        try:
            kind_of(name)
        except ValueError:
            raise ValueError(unknown(name)) from None
        out.append(name)
    return out


def check_device(device: str) -> torch.device:
    """`device` as a torch.device, if this torch can use it here."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be a torch device such as cpu, cuda or cuda:1, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ValueError(f"device {device!r} cannot be used here ({why}: torch {torch.__version__}); use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s) here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} cannot be used here (no MPS backend); use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be cpu, cuda or mps, got {device!r}")
    return dev


def check_build(names: list[str], out_dir: Path, jobs: int, device: str, replace: bool) -> None:
    """Everything a build checks before it starts (see the module's docstring)."""
    check_positive_int("jobs", jobs)
    check_device(device)
    if Path(out_dir).resolve() == ARTIFACT_DIR.resolve() and not replace:
        shipped = [n for n in names if (ARTIFACT_DIR / f"{n}.json").exists()]
        if shipped:
            which = shipped[0] if len(shipped) == 1 else f"{shipped[0]} and {len(shipped) - 1} more"
            raise ValueError(f"{which} ship(s) in {ARTIFACT_DIR}, and a rebuild differs in its last digits: pass "
                             "--out-dir DIR to build a copy elsewhere, or --replace to replace what ships")


def report_verify(names: Sequence[str], record: bool = False) -> tuple[list[str], bool]:
    """verify's lines ('ok NAME' or 'FAILED NAME: what is wrong') for `names` (all if empty),
    and whether all passed. record=True first records each named manifest in manifests.sha256
    (only names given, and only if its files match it)."""
    kinds = {n: kind for kind, k in KINDS.items() for n in k.names}
    if record and not names:
        raise ValueError("--record needs the NAMEs of the manifests to record")
    for name in resolve(names, every=False) if record else []:
        found = [p for p in problems(name, ARTIFACT_DIR) if REGISTRY not in p]
        if found:
            raise ValueError(f"{name} cannot be recorded: {'; '.join(found)}")
        record_manifest(name)
    recorded = recorded_digests()
    targets = resolve(names, every=False) if names else [
        n for n in kinds if (ARTIFACT_DIR / f"{n}.json").exists() or f"{n}.json" in recorded]
    found = verify_all(targets, kinds)
    lines = [f"ok {n}" if not p else f"FAILED {n}: {'; '.join(p)}" for n, p in found.items()]
    return lines, all(not p for p in found.values())
