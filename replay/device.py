"""A copy of a replay buffer's arrays on the training device (CUDA), so that batches are gathered
there instead of being gathered on the host and copied over at every gradient step.

The host arrays stay the buffer's truth (writes, n-step windows, priorities and checkpoints use
them, unchanged); the device copy follows them lazily. Writes only mark what changed: the ring of
transition slots written since the last sync (at most two contiguous ranges, however many steps
that was) and, for frame storage, the frames stored since. A sync before each sample copies just
those rows, a few small host-to-device transfers per gradient step instead of a whole batch.
Indices are still drawn on the host by the buffer's own generator, so a device-gathered batch
holds exactly the transitions the host would have gathered.
"""

from __future__ import annotations

import numpy as np
import torch


class DeviceMirror:
    """Device tensors mirroring host arrays: ``slot_arrays`` are indexed by transition slot (a ring
    of ``capacity``), ``shared_arrays`` (stored frames) by rows that the storage reports changed."""

    def __init__(
        self,
        *,
        slot_arrays: dict[str, np.ndarray],
        shared_arrays: dict[str, np.ndarray],
        capacity: int,
        device: torch.device | str,
    ) -> None:
        self.device = torch.device(device)
        self.slot_host, self.shared_host = slot_arrays, shared_arrays
        self.capacity = capacity
        self.arrays: dict[str, torch.Tensor] = {}
        self.reload()

    def reload(self) -> None:
        """Copy every host array whole (at start and after a checkpoint is loaded)."""
        self.arrays = {
            name: torch.from_numpy(array).to(self.device, copy=True)
            for name, array in {**self.slot_host, **self.shared_host}.items()
        }
        self.unsynced_end, self.unsynced_count = 0, 0

    def written(self, end: int, count: int) -> None:
        """``count`` more transitions were written to the ring, the last one just before slot ``end``."""
        self.unsynced_end = end
        self.unsynced_count = min(self.unsynced_count + count, self.capacity)

    def sync(self, changed_shared_rows: dict[str, np.ndarray]) -> None:
        """Bring the device copy up to date: the slots written since the last sync, and the given
        rows of the shared arrays."""
        if self.unsynced_count:
            start = (self.unsynced_end - self.unsynced_count) % self.capacity
            ranges = (
                [slice(start, start + self.unsynced_count)]
                if start + self.unsynced_count <= self.capacity
                else [slice(start, self.capacity), slice(0, self.unsynced_end)]
            )
            for name, host in self.slot_host.items():
                for slot_range in ranges:
                    self.arrays[name][slot_range] = torch.from_numpy(host[slot_range]).to(self.device)
            self.unsynced_count = 0
        for name, rows in changed_shared_rows.items():
            if len(rows):
                rows_t = torch.from_numpy(rows).to(self.device)
                self.arrays[name][rows_t] = torch.from_numpy(self.shared_host[name][rows]).to(self.device)
