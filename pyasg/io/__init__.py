"""Saving and loading: weights (safetensors), training checkpoints, and graph files.

Every file is written atomically (temporary name, fsync, rename, fsync of the
directory), so a process killed mid-save leaves the previous file intact; every
file is checked before it is trusted, and a bad one raises `CheckpointError`
(graphs: `GraphFormatError`) naming the path and the defect.

- `save(path, params, metadata)`, `load(path, expected=…)`, `load_flat`,
  `read_metadata`: pytrees of arrays as safetensors, keyed by dotted paths
  (`pyasg.io.weights`).
- `from_torch_state_dict`, `split_torch_state_dict` (params and BatchNorm state),
  `to_torch_state_dict`: PyTorch's names by a table of rules, `TORCH_RULES`, which a
  user extends with `TorchRule` rows (`pyasg.io.torch_names`);
  `from_torch_optimizer_state`, `to_torch_optimizer_state`: `torch.optim` state dicts
  (`pyasg.io.torch_optim`).
- `Checkpoint`, `save_checkpoint`, `load_checkpoint`, `CheckpointManager`: weights,
  optimiser state, random key, step, epoch and metadata, one file per step
  (`pyasg.io.checkpoint`).
- `save_graph`, `load_graph`: a model's structure as JSON (`pyasg.io.graphs`); for
  other input sizes, the sizes attributes fix are re-derived or the load is refused
  (`pyasg.io.respecialise`, `pyasg.io.stale`).

Every entry point checks its path argument first (`pyasg.io.paths`: None, numbers,
NUL characters are errors naming the argument) and reads only regular files (a FIFO
or a device under a file's name is refused before it could block); error messages
quote at most a few hundred characters of any value or path (`pyasg.errors.shown`).

>>> import tempfile, os, numpy as np
>>> from pyasg import io
>>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
>>> _ = io.save(path, {"w": np.arange(3, dtype=np.int64)})
>>> io.load(path)["w"].tolist()
[0, 1, 2]
"""

from pyasg.io.atomic import atomic_write
from pyasg.io.checkpoint import Checkpoint, CheckpointManager, load_checkpoint, save_checkpoint
from pyasg.io.graphs import load_graph, save_graph
from pyasg.io.torch_names import (
    TORCH_RULES,
    TorchName,
    TorchRule,
    from_torch_state_dict,
    split_torch_state_dict,
    to_torch_state_dict,
)
from pyasg.io.torch_optim import from_torch_optimizer_state, to_torch_optimizer_state
from pyasg.io.weights import load, load_flat, read_metadata, save

__all__ = [
    "TORCH_RULES", "Checkpoint", "CheckpointManager", "TorchName", "TorchRule",
    "atomic_write", "from_torch_optimizer_state", "from_torch_state_dict", "load",
    "load_checkpoint", "load_flat", "load_graph", "read_metadata", "save", "save_checkpoint",
    "save_graph", "split_torch_state_dict", "to_torch_optimizer_state", "to_torch_state_dict",
]
