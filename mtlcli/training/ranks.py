"""What the processes of a multi-process run share: one decision for all, and proof that they stayed in sync."""

from __future__ import annotations

import zlib


def same_on_every_rank(accelerator, value):
    """The main process's `value` on every rank (a Ctrl-C, an early stop), so that all stop at the same step."""
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value])[0]
    return value


def weights_checksums(accelerator, model) -> list[int]:
    """A CRC of every weight on each rank: DDP keeps the ranks identical, and this shows it."""
    crc = 0
    for tensor in model.state_dict().values():
        crc = zlib.crc32(tensor.detach().float().cpu().numpy().tobytes(), crc)
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        return gather_object([crc])
    return [crc]
