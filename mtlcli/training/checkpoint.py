"""Resumable training state: written atomically, verified on load.

A checkpoint is a directory `checkpoints/step-NNNNNNNN/` holding the model weights (safetensors), the
optimizer/scheduler/scaler/RNG states (torch.save of tensors and plain containers only, loaded with
weights_only=True), the loop position (JSON) and a manifest of every file's size and sha256. It is
written into a staging directory, fsynced and renamed into place, so `kill -9` at any moment leaves
the previous complete checkpoint; a checkpoint whose files do not match its manifest is reported and
never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import InputError, Problem, WorkError

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, model, trainer_state: dict, position: dict, keep: int) -> Path:
    """`trainer_state`: name → object for torch.save (optimizer, scheduler, scaler, rng); `position`: JSON."""
    from safetensors.torch import save_file

    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"step-{step:08d}"
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        state = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
        save_file(state, str(staging / "model.safetensors"))
        torch.save(trainer_state, staging / "trainer_state.pt")
        (staging / "position.json").write_text(json.dumps(position), encoding="utf-8")
        manifest = {}
        for path in sorted(staging.iterdir()):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            manifest[path.name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        with open(staging / MANIFEST, "rb") as handle:
            os.fsync(handle.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
        _fsync_dir(root)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        previous = [p.name for p in list_checkpoints(run_dir)]
        kept = f"the previous checkpoint {previous[-1]} is kept" if previous else "no earlier checkpoint exists"
        raise WorkError(f"could not save checkpoint {target}: {err.strerror or err}; {kept}") from None
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / CHECKPOINTS
    return sorted(p for p in root.glob("step-*") if p.is_dir()) if root.is_dir() else []


def verify(path: Path) -> str | None:
    """None when every file matches the manifest, else what is wrong."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "manifest missing or unreadable"
    for name, expected in manifest.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != expected["size"] or _sha256(file) != expected["sha256"]:
            return f"{name} does not match its manifest (torn or corrupted)"
    return None


def latest_valid_checkpoint(run_dir: Path) -> tuple[Path, list[Problem]]:
    """The newest checkpoint that verifies, and a problem for each newer one that did not."""
    problems = []
    for path in reversed(list_checkpoints(run_dir)):
        issue = verify(path)
        if issue is None:
            return path, problems
        problems.append(Problem(str(path), "", issue))
    if problems:
        raise InputError(problems)
    raise InputError(Problem(str(run_dir), "", "no checkpoint to resume from (was this run started with mtl train?)"))


def load_checkpoint(path: Path) -> tuple[dict, dict, dict]:
    """(model state dict, trainer state, position)."""
    from safetensors.torch import load_file

    return (
        load_file(str(path / "model.safetensors")),
        torch.load(path / "trainer_state.pt", weights_only=True),
        json.loads((path / "position.json").read_text(encoding="utf-8")),
    )
