"""A Run's whole loop position in a checkpoint and back: what makes `--resume` replay the same steps.

Split from trainer.py to keep the loop readable; these functions read and set the Run's own attributes."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError, Problem
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


def save_run_state(run) -> Path | None:
    """Checkpoint `run` where it stands; the path on the main process, None on the others."""
    acc = run.accelerator
    position = {
        "epoch": run.epoch,
        "step": run.step,
        "global_step": run.global_step,
        "streams": {task: stream.state() for task, stream in run.streams.items()},
        "best": run.best,
        "epochs_without_gain": run.epochs_without_gain,
        "history": run.history,
        "epoch_totals": {k: dict(v) for k, v in run.epoch_totals.items()},
        "elapsed_s": run.elapsed_before,
        "log_bytes": run.log.size() if run.log else 0,
    }
    # each rank's stream position, RNG and task-weight gradients differ: they are gathered into the one checkpoint
    per_rank = {"streams": position.pop("streams"), "rng": rng_state(), "weighting_grads": _grads(run.weighting)}
    gathered = [per_rank]
    if acc.num_processes > 1:
        from accelerate.utils import gather_object

        gathered = gather_object([per_rank])
    path = None
    if run.is_main:
        trainer_state = {
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
            "ranks": [{"rng": g["rng"], "weighting_grads": g["weighting_grads"]} for g in gathered],
            "weighting": {"module": run.weighting.state_dict(), **run.weighting.extra_state()},
            "pcgrad_rng": run.pcgrad_rng.get_state(),
            "grads": _grads(run.core),
        }
        if run.scaler is not None:
            trainer_state["scaler"] = run.scaler.state_dict()
        position["ranks"] = [g["streams"] for g in gathered]
        path = save_checkpoint(
            run.output_dir, run.global_step, run.core, trainer_state, position, run.config.keep_checkpoints
        )
        run.on_event("checkpoint", {"path": str(path), "step": run.global_step})
    acc.wait_for_everyone()
    return path


def _grads(module) -> dict:
    """The gradients accumulated so far in a grad_accum window (none at its end): a checkpoint taken inside
    one must carry them. DDP reduces the model's at every backward, so every rank holds the same ones; the
    learned task weights' are reduced only at the step, so each rank's are kept. fp16 gradients are scaled
    by the scaler's current scale, which is saved with them."""
    return {name: p.grad.detach().cpu() for name, p in module.named_parameters() if p.grad is not None}


def restore_run_state(run, checkpoint: Path) -> None:
    acc = run.accelerator
    weights, trainer_state, position = load_checkpoint(checkpoint)
    if len(position["ranks"]) != acc.num_processes:
        raise InputError(
            Problem(
                str(checkpoint),
                "",
                f"saved by {len(position['ranks'])} process(es), resumed with {acc.num_processes}: use the same number",
            )
        )
    run.core.load_state_dict(weights)
    run.optimizer.load_state_dict(trainer_state["optimizer"])
    run.scheduler.load_state_dict(trainer_state["scheduler"])
    run.weighting.load_state_dict(trainer_state["weighting"]["module"])
    run.weighting.load_extra_state(trainer_state["weighting"])
    run.pcgrad_rng.set_state(trainer_state["pcgrad_rng"])
    rank = trainer_state["ranks"][acc.process_index]
    for module, grads in ((run.core, trainer_state.get("grads", {})), (run.weighting, rank.get("weighting_grads", {}))):
        params = dict(module.named_parameters())
        for name, grad in grads.items():
            params[name].grad = grad.to(params[name].device, params[name].dtype)
    if run.scaler is not None and "scaler" in trainer_state:
        run.scaler.load_state_dict(trainer_state["scaler"])
    for task, state in position["ranks"][acc.process_index].items():
        run.streams[task].restore(state)
    set_rng_state(rank["rng"])
    run.epoch, run.step, run.global_step = position["epoch"], position["step"], position["global_step"]
    run.best, run.epochs_without_gain = position["best"], position["epochs_without_gain"]
    run.history, run.elapsed_before = position["history"], position["elapsed_s"]
    totals = run._fresh_totals()
    for key, values in position["epoch_totals"].items():
        totals[key].update(values)
    run.epoch_totals = totals
    if run.log:
        run.log.restore(position["log_bytes"], run.history)
    run.on_event(
        "resumed",
        {"checkpoint": str(checkpoint), "epoch": run.epoch + 1, "step": run.step, "global_step": run.global_step},
    )
