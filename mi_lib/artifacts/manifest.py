"""What every shipped artifact has, whatever it holds: its files, each with its sha256 and
size, and a JSON manifest NAME.json beside them with the command that built it, its recipe
and its metrics. One way to write a manifest, one way to read and verify it.

The manifests themselves are recorded in manifests.sha256 (sha256sum's format), which only the
build command rewrites, when it builds into the shipped folder with --replace: a manifest
edited by hand (its metrics, say) no longer matches its line there, and `python -m
mi_lib.artifacts verify` says so."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from mi_lib.checkpoints import atomic_write

ARTIFACT_DIR = Path(__file__).resolve().parent
REGISTRY = "manifests.sha256"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def file_entry(path: Path) -> dict:
    """A file's sha256 and size, as a manifest records them."""
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


def opening(name: str, rec: object, path: Path) -> dict:
    """What a one-file artifact's manifest opens with: its name, the command that builds it,
    the recipe (a dataclass), and the file's name, sha256 and size."""
    return {"name": name, "command": f"python -m mi_lib.artifacts build {name}", "recipe": dataclasses.asdict(rec),
            "file": path.name, **file_entry(path)}


def write_json(path: Path, obj: dict) -> None:
    """obj as indented JSON at path, written atomically."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def load_manifest(name: str, art_dir: str | Path = ARTIFACT_DIR) -> dict:
    """The manifest NAME.json in art_dir (a ValueError with the build command if it is missing)."""
    path = Path(art_dir) / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"name must be a built artifact (no {path.name} in {art_dir}); "
                         f"run: python -m mi_lib.artifacts build {name}")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" ({exc.msg}, line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValueError(f"the manifest {path} is not valid JSON{where}; restore it (git checkout -- {path}) "
                         f"or rebuild it (python -m mi_lib.artifacts build {name} --replace)") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"the manifest {path} must hold a JSON object, got {type(manifest).__name__}")
    return manifest


def verified_manifest(name: str, art_dir: str | Path = ARTIFACT_DIR, verify: bool = True) -> dict:
    """load_manifest, and (verify=True) every file it lists ('file', or 'files') checked
    against its sha256."""
    manifest, art_dir = load_manifest(name, art_dir), Path(art_dir)
    files = manifest.get("files") or {manifest["file"]: {"sha256": manifest["sha256"]}}
    for fname, meta in files.items():
        if verify and sha256(art_dir / fname) != meta["sha256"]:
            raise ValueError(f"{fname} does not match the sha256 in its manifest; rebuild it")
    return manifest


def recorded_digests(art_dir: str | Path = ARTIFACT_DIR) -> dict[str, str]:
    """{manifest file name: sha256} as manifests.sha256 in art_dir records them ({} if absent)."""
    path = Path(art_dir) / REGISTRY
    lines = path.read_text().splitlines() if path.is_file() else []
    return {fname: digest for digest, fname in (line.split(None, 1) for line in lines if line.strip())}


def record_manifest(name: str, art_dir: str | Path = ARTIFACT_DIR) -> None:
    """Record NAME.json's sha256 in art_dir's manifests.sha256 (the build command's last step)."""
    digests = recorded_digests(art_dir) | {f"{name}.json": sha256(Path(art_dir) / f"{name}.json")}
    text = "".join(f"{d}  {f}\n" for f, d in sorted(digests.items()))
    atomic_write(Path(art_dir) / REGISTRY, lambda f: f.write(text.encode()))
