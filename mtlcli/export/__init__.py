"""`mtl export`: a trained model that leaves mtl. Each format writes into a staging folder that is renamed
into place only once complete, so a failed export leaves nothing that looks like one."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError, Problem

FORMATS = ("hf", "onnx")


def export(
    model_dir: str | Path,
    fmt: str,
    out: str | Path,
    task: str = "all",
    overwrite: bool = False,
    quantize: str | None = None,
) -> tuple[list[Path], dict]:
    """Export `model_dir` as `fmt` into `out` (hf: one directory, or one per task with task "all"; onnx: one graph
    of the encoder and every head). Returns the directories written and, for ONNX, the export's report."""
    from ..spec import read_spec

    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    if quantize and fmt != "onnx":
        raise InputError("--quantize is for --format onnx")
    spec = read_spec(model_dir)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(Problem(str(out), "", "exists and is not empty; pass --overwrite or choose another -o"))
    if fmt == "onnx" and spec.adapters:
        raise InputError(
            Problem(
                str(model_dir),
                "",
                "its tasks have their own adapters, which one graph of every head cannot hold: "
                "use --format hf (one merged model per task)",
            )
        )
    if fmt == "onnx":
        from .onnx import export_onnx, require_onnx

        require_onnx()  # before anything is written
        if task != "all":
            raise InputError("--format onnx exports every head in one graph: leave out --task")
        with _staged(out) as staging:
            report = export_onnx(model_dir, staging, quantize)
        return [out], report
    return _export_hf(model_dir, spec, task, out), {}


def _export_hf(model_dir, spec, task: str, out: Path) -> list[Path]:
    from .hf import export_hf, exportable

    chosen = [t for t in spec.tasks if not exportable(spec, t)] if task == "all" else [task]
    for name in chosen:
        reason = exportable(spec, name)
        if reason:
            raise InputError(Problem(str(model_dir), "", f"cannot export {name}: {reason}"))
    if not chosen:
        raise InputError(Problem(str(model_dir), "", "none of the model's heads can be exported exactly"))
    from ..backbones import quiet_transformers
    from ..model import load_model

    quiet_transformers()  # its progress bars would garble the command's own output
    model, tokenizer = load_model(model_dir)  # once, for every task's directory
    with _staged(out) as staging:
        for name in chosen:
            target = staging if task != "all" else staging / name
            target.mkdir(exist_ok=True)
            export_hf(model, tokenizer, model_dir, name, target)
    return [out] if task != "all" else [out / name for name in chosen]


@contextlib.contextmanager
def _staged(out: Path):
    """A staging folder beside `out`, renamed to `out` when the block succeeds; removed whatever happens."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
