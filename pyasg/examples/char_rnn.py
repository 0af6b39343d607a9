"""A character-level GRU language model (nn.GRU on pyasg.scan) trained on standard-library text.

The text and the vocabulary are charlm's (Python's own standard library, no download).
The model is Embedding -> GRU (one `scan` over time per layer) -> Linear, trained with
cross-entropy and Adam on windows of `--context` characters; the whole step (forward,
gradient through the scan, update) is one jitted graph, whose size does not depend on
the window length. After training it samples text, feeding one character at a time
through the same GRU (a jitted one-step function, compiled once).

    python pyasg/examples/char_rnn.py --steps 300

>>> import io, contextlib
>>> with contextlib.redirect_stdout(io.StringIO()):
...     m = main(["--steps", "3", "--quiet"])
>>> sorted(m)
['final_loss', 'first_loss', 'graph_nodes']
"""

from __future__ import annotations

import numpy as np

import pyasg
from pyasg import nn
from pyasg.examples._common import example_parser, finish, positive_int, to_numpy, train_loop
from pyasg.examples.charlm import VOCAB, batch, decode, encode, load_corpus
from pyasg.nn.losses import cross_entropy
from pyasg.optim import Adam, clip_grad_norm


class CharRNN(nn.Module):
    """Character ids [batch, time] -> next-character logits [batch, time, vocab]."""

    kind = "CharRNN"

    def __init__(self, hidden: int = 64, embed: int = 32, layers: int = 1,
                 vocab_size: int = len(VOCAB)) -> None:
        self.tok = nn.Embedding(vocab_size, embed)
        self.gru = nn.GRU(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def __call__(self, params: dict, ids: object, h0: object = None) -> tuple:
        """(logits [batch, time, vocab], the final hidden state [layers, batch, hidden])."""
        out, h = self.gru(params["gru"], self.tok(params["tok"], ids), h0)
        return self.head(params["head"], out), h


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train on random windows of the corpus; print a sample; return the losses."""
    parser = example_parser(__doc__.splitlines()[0], steps=300)
    parser.add_argument("--context", type=positive_int, default=32,
                        help="characters per training window (default 32)")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="default 16")
    parser.add_argument("--hidden", type=positive_int, default=64, help="default 64")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate "
                        "(default 0.01)")
    parser.add_argument("--sample-length", type=int, default=120,
                        help="characters to sample after training (default 120)")
    args = parser.parse_args(argv)

    data = encode(load_corpus())
    model = CharRNN(hidden=args.hidden)
    opt = Adam(lr=args.lr)
    params = model.init(pyasg.random.key(args.seed))
    state = opt.init(params)

    def loss_fn(params: dict, x: object, y: object) -> object:
        logits, _ = model(params, x)
        return cross_entropy(logits.reshape(-1, len(VOCAB)), y.reshape(-1))

    def step(params: dict, state: dict, x: object, y: object) -> tuple:
        loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
        grads, _ = clip_grad_norm(grads, 1.0)
        params, state = opt.update(grads, state, params)
        return params, state, loss

    def windows(n: int) -> tuple[np.ndarray, np.ndarray]:
        return batch(data, args.seed, n, args.batch_size, args.context)

    nodes = len(pyasg.make_graph(step)(params, state, *windows(1)).nodes)
    train_step = pyasg.jit(step, backend=args.backend, name="char_rnn_train_step")
    params, state, first_loss, loss = train_loop("char_rnn", args.steps, train_step,
                                               params, state, windows)
    if args.sample_length > 0:
        print(sample(model, to_numpy(params), args.sample_length, args.seed, args.backend))
    return finish("char_rnn", {"first_loss": first_loss, "final_loss": loss,
                               "graph_nodes": float(nodes)})


def sample(model: CharRNN, params: dict, length: int, seed: int,
           backend: str = "numpy") -> str:
    """`length` characters drawn one at a time from the model (temperature 0.8).

    >>> m = CharRNN(hidden=8)
    >>> len(sample(m, m.init(pyasg.random.key(0)), 5, 0))
    6
    """
    one = pyasg.jit(lambda p, ids, h: model(p, ids, h), backend=backend)
    rng = np.random.default_rng(seed)
    ids = [VOCAB.index("\n")]
    h = np.zeros((1, 1, model.gru.hidden_size), np.float32)
    for _ in range(length):
        logits, h = one(params, np.array([[ids[-1]]], np.int32), h)
        z = np.asarray(logits, np.float64)[0, -1] / 0.8
        p = np.exp(z - z.max())
        ids.append(int(rng.choice(len(VOCAB), p=p / p.sum())))
    return decode(ids)


if __name__ == "__main__":
    main()
