"""A transformer classifier learns, by attention, whether token A comes before token B.

Every sequence holds exactly one A and one B among random filler tokens, so the bag
of tokens is the same for both classes: only where A and B stand decides the label,
and a model has to relate two positions to each other, which is what attention does.
The model puts a summary token (CLS, as BERT) in front of each sequence, adds learned
positions to the token embeddings, runs two pre-LN `TransformerBlock`s and a final
LayerNorm, and pools by reading the CLS position alone into a Linear head. That
position sees the others only through attention, so the task cannot be solved
without it (mean pooling would not ensure this: a sum of per-position features can
already compare two positions). One traced step holds the forward pass,
`value_and_grad` and the AdamW update. Accuracy is measured on sequences it never saw
(chance is 50%).

    python pyasg/examples/transformer_classifier.py --steps 400

>>> ids, labels = make_sequences(3, seed=0)
>>> ids.shape, bool(((ids == A).sum(axis=1) == 1).all() and ((ids == B).sum(axis=1) == 1).all())
((3, 12), True)
>>> bool(((np.argmax(ids == A, axis=1) < np.argmax(ids == B, axis=1)) == labels).all())
True
"""

from __future__ import annotations

import numpy as np

import pyasg
from pyasg import nn
from pyasg.examples._common import (
    example_parser,
    finish,
    to_numpy,
    train_loop,
)
from pyasg.metrics import accuracy
from pyasg.nn.losses import cross_entropy
from pyasg.optim import AdamW

#: Token ids: A and B are the two marked tokens, the rest (up to VOCAB) are fillers;
#: CLS, the summary token the model puts first, never occurs in the data.
A, B = 0, 1
VOCAB = 8
CLS = VOCAB
LENGTH = 12


def make_sequences(n: int, seed: int | list[int],
                   length: int = LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """n sequences of token ids [n, length] (int32) and labels [n]: 1 when A precedes B.

    A and B stand at two distinct random positions; every other position is a filler
    drawn uniformly from the VOCAB - 2 others. Labels come out balanced on average.

    >>> ids, labels = make_sequences(1000, seed=1)
    >>> bool(0.45 < labels.mean() < 0.55), int(ids.min()), int(ids.max())
    (True, 0, 7)
    """
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, VOCAB, (n, length))
    # argsort of uniform noise: a random permutation per row, whose first two entries
    # are two distinct random positions
    where = np.argsort(rng.random((n, length)), axis=1)[:, :2]
    rows = np.arange(n)
    ids[rows, where[:, 0]] = A
    ids[rows, where[:, 1]] = B
    return ids.astype(np.int32), (where[:, 0] < where[:, 1]).astype(np.int64)


class Classifier(nn.Module):
    """ids [batch, time] -> logits [batch, classes]: CLS + ids, embeddings, blocks, Linear
    on the CLS position.

    >>> model = Classifier(embed_dim=16, num_heads=2, num_layers=1)
    >>> model(model.init(pyasg.random.key(0)), np.zeros((4, LENGTH), np.int32)).shape
    (4, 2)
    """

    kind = "Classifier"

    def __init__(self, embed_dim: int = 32, num_heads: int = 4, num_layers: int = 2,
                 classes: int = 2) -> None:
        self.tok = nn.Embedding(VOCAB + 1, embed_dim)  # + 1: the CLS token
        # positions matter as much as tokens here: start them at the tokens' scale
        # (N(0, 1)) rather than GPT-2's 0.02
        self.pos = nn.LearnedPositionalEmbedding(LENGTH + 1, embed_dim, std=1.0)
        self.blocks = [nn.TransformerBlock(embed_dim, num_heads) for _ in range(num_layers)]
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, classes)

    def children(self) -> dict[str, nn.Module]:
        blocks = {f"blocks.{i}": b for i, b in enumerate(self.blocks)}
        return {"tok": self.tok, "pos": self.pos, **blocks, "norm": self.norm, "head": self.head}

    def init(self, key: object) -> dict:
        keys = pyasg.random.split(key, 4 + len(self.blocks))
        return {"tok": self.tok.init(keys[0]), "pos": self.pos.init(keys[1]),
                "blocks": {str(i): b.init(k) for i, (b, k) in
                           enumerate(zip(self.blocks, keys[4:]))},
                "norm": self.norm.init(keys[2]), "head": self.head.init(keys[3])}

    def __call__(self, params: dict, ids: object) -> object:
        ids_type = pyasg.type_of(ids)
        cls = pyasg.full((ids_type.shape[0], 1), CLS, dtype=ids_type.dtype)
        ids = pyasg.concatenate([cls, ids], axis=1)
        x = self.pos(params["pos"], self.tok(params["tok"], ids))
        for i, block in enumerate(self.blocks):
            x = block(params["blocks"][str(i)], x)
        return self.head(params["head"], self.norm(params["norm"], x)[:, 0])


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on fresh random batches; return losses and held-out accuracy."""
    parser = example_parser(__doc__.splitlines()[0], steps=400)
    parser.add_argument("--lr", type=float, default=3e-3,
                        help="AdamW learning rate (default 0.003)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--layers", type=int, default=2,
                        help="transformer blocks (default 2)")
    args = parser.parse_args(argv)

    model = Classifier(num_layers=args.layers)
    opt = AdamW(lr=args.lr, weight_decay=0.01)
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)
    # Test sequences come from their own stream of the seed, apart from every batch's.
    x_test, y_test = make_sequences(2000, seed=[args.seed, 0])

    def loss_fn(params: dict, ids: object, y: object) -> object:
        return cross_entropy(model(params, ids), y)

    @pyasg.jit(backend=args.backend, name="transformer_classifier_train_step")
    def train_step(params: dict, state: dict, ids: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, ids, y)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    def batch(step: int) -> tuple:  # fresh sequences every step, seeded by it
        return make_sequences(args.batch_size, seed=[args.seed, 1, step])

    params, state, first_loss, loss = train_loop("transformer_classifier", args.steps,
                                                 train_step, params, state, batch)

    predicted = np.asarray(model(to_numpy(params), x_test)).argmax(axis=1)
    return finish("transformer_classifier", {"first_loss": first_loss, "final_loss": loss,
                                             "test_accuracy": accuracy(y_test, predicted)})


if __name__ == "__main__":
    main()
