"""Training: `Trainer`, the loop everyone writes (compiled step, accumulation, clipping,
validation, early stopping, exact resume from checkpoints, a progress bar, events),
its callbacks and its scalar loggers.

- `pyasg.train.trainer`: `Trainer`;
- `pyasg.train.steps`: the compiled training, accumulation and evaluation steps;
- `pyasg.train.state`: what a checkpoint holds beyond the arrays, to resume exactly;
- `pyasg.train.callbacks`: `Callback`, `LambdaCallback`;
- `pyasg.train.logging`: `CSVLogger`, `TensorBoardLogger` (tensorboardX, optional);
- `pyasg.train.progress`: the tqdm bar; `pyasg.train.checks`: `TrainerError`.

>>> import numpy as np
>>> from pyasg import nn, losses, optim
>>> from pyasg.data import ArrayDataset, DataLoader
>>> x = np.eye(4, dtype=np.float32)
>>> data = DataLoader(ArrayDataset(x, x.sum(1, keepdims=True)), batch_size=2)
>>> trainer = Trainer(nn.Linear(4, 1), losses.mse_loss, optim.Adam(lr=0.1), data,
...                   progress=False)
>>> first = trainer.fit(steps=1)["loss"]
>>> trainer.fit(steps=100)["loss"] < first / 100
True
"""

from pyasg.train.callbacks import Callback, LambdaCallback
from pyasg.train.checks import MissingDependencyError, TrainerError
from pyasg.train.logging import CSVLogger, TensorBoardLogger
from pyasg.train.trainer import Trainer

__all__ = ["CSVLogger", "Callback", "LambdaCallback", "MissingDependencyError",
           "TensorBoardLogger", "Trainer", "TrainerError"]
