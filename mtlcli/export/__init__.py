"""`mtl export`: a trained model that leaves mtl. Each format writes into a staging folder that is renamed
into place only once complete, so a failed export leaves nothing that looks like one."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..errors import InputError, Problem

FORMATS = ("hf",)


def export(model_dir: str | Path, fmt: str, out: str | Path, task: str = "all", overwrite: bool = False) -> list[Path]:
    """Export `model_dir` as `fmt` into `out` (hf: one directory, or one per task with task "all")."""
    from ..spec import read_spec
    from .hf import export_hf, exportable

    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    spec = read_spec(model_dir)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(Problem(str(out), "", "exists and is not empty; pass --overwrite or choose another -o"))
    chosen = [t for t in spec.tasks if not exportable(spec, t)] if task == "all" else [task]
    for name in chosen:
        reason = exportable(spec, name)
        if reason:
            raise InputError(Problem(str(model_dir), "", f"cannot export {name}: {reason}"))
    if not chosen:
        raise InputError(Problem(str(model_dir), "", "none of the model's heads can be exported exactly"))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        written = []
        for name in chosen:
            target = staging if task != "all" else staging / name
            target.mkdir(exist_ok=True)
            export_hf(model_dir, name, target)
            written.append(out if task != "all" else out / name)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
