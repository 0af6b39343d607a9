"""A character-level transformer language model trained on Python's own standard library.

This is ``pyasg demo`` (and ``pyasg run charlm``). It needs no download and no GPU: the
text is the source of a fixed list of standard-library modules (`CORPUS_MODULES`),
found under ``sysconfig.get_paths()["stdlib"]``. The model is pyasg's own layers:
Embedding, LearnedPositionalEmbedding, causal TransformerBlocks, LayerNorm and a
Linear head, trained with cross-entropy and AdamW; one jitted step holds the forward
pass, the gradient and the update (one graph, one executable). With ``--visualize``
the viewer also gets the step's cost per node after the first step (its heat map)
and can change the blocks' activations and the learning rate while it trains
(`pyasg.train.lab.ModelLab`). After training it
samples text, with a temperature, from a jitted forward over a fixed context window,
so generation compiles once whatever the length.

Checkpoints: ``--save DIR`` writes ``DIR/ckpt-<step>.safetensors`` at the end (and
every ``--save-every`` steps) with `pyasg.io.CheckpointManager`, and, with
``--visualize``, the changes made in the viewer's model lab to ``DIR/lab.json``, which
``--resume`` applies to the model again; ``--resume DIR``
continues from the newest one there: its step, parameters and optimiser state, for
``--steps`` MORE steps (the batches depend only on the seed and the step number, so
3 steps, save, resume, 2 steps gives the same weights as 5 steps straight). The model
sizes come from the checkpoint. A resumed run saves back into DIR unless ``--save``
names another directory.

>>> import io, contextlib
>>> with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
...     m = main(["--steps", "2", "--sample-length", "8", "--quiet"])
>>> sorted(m)
['final_loss', 'first_loss', 'sample_length', 'seconds', 'start_step', 'steps', 'steps_per_s']
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import pyasg
from pyasg import events, nn, viewer
from pyasg.errors import CheckpointError, PyasgError
from pyasg.examples._common import (
    example_parser,
    finish,
    positive_int,
    progress,
    report_step,
    to_numpy,
)
from pyasg.nn.losses import cross_entropy
from pyasg.optim import AdamW, clip_grad_norm
from pyasg.train.changes import replayed
from pyasg.train.lab import RECORD, ModelLab, load_changes
from pyasg.viewer.cost import measure, publish_cost
from pyasg.viewer.texts import resolve_lang

#: The standard-library modules whose source is the training text, in this order. Plain,
#: long-lived modules of mostly prose-like code and docstrings (about 350 kB in 3.11);
#: those missing from an installation are skipped.
CORPUS_MODULES: tuple[str, ...] = (
    "textwrap.py", "string.py", "fnmatch.py", "glob.py", "bisect.py", "heapq.py",
    "colorsys.py", "shlex.py", "difflib.py", "argparse.py", "calendar.py", "fractions.py",
)

#: The vocabulary: newline and the 95 printable ASCII characters. Fixed, so that a
#: checkpoint means the same on every installation; tabs become 4 spaces, anything else "?".
VOCAB: str = "\n" + "".join(chr(c) for c in range(32, 127))
_UNKNOWN = VOCAB.index("?")
# _TABLE[min(code point, 128)] is the id; slot 128 stands for every non-ASCII character.
_TABLE = np.full(129, _UNKNOWN, np.int32)
_TABLE[[ord(c) for c in VOCAB]] = np.arange(len(VOCAB))


class CorpusError(PyasgError):
    """The training text cannot be found or read."""


@dataclass(frozen=True)
class ModelConfig:
    """The model's sizes (saved in each checkpoint's metadata)."""

    context: int = 64
    embed_dim: int = 64
    num_heads: int = 4
    num_layers: int = 2


def stdlib_dir() -> Path:
    """Where this Python keeps its standard library (``sysconfig``'s "stdlib" path)."""
    return Path(sysconfig.get_paths()["stdlib"])


def load_corpus(directory: Path | None = None,
                modules: Sequence[str] = CORPUS_MODULES) -> str:
    """The text of `modules` under `directory` (default: the standard library), joined.

    Raises `CorpusError` naming the directory and the files looked for when none is found.

    >>> len(load_corpus()) > 100_000
    True
    """
    directory = stdlib_dir() if directory is None else Path(directory)
    texts = []
    for name in modules:
        try:
            texts.append((directory / name).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue  # a trimmed installation may lack some; the rest is still text
    if not texts:
        raise CorpusError(f"charlm: none of the training files was found in {directory} "
                          f"(looked for {', '.join(modules)}); this Python's standard-library "
                          f"sources seem to be missing")
    return "\n".join(texts)


def encode(text: str) -> np.ndarray:
    """Character ids of `text` in `VOCAB` (int32).

    >>> encode("a\\tb").tolist() == [VOCAB.index(c) for c in "a    b"]
    True
    """
    codes = np.frombuffer(text.replace("\t", "    ").encode("utf-32-le"), np.uint32)
    return _TABLE[np.minimum(codes, len(_TABLE) - 1)]


def decode(ids: Sequence[int]) -> str:
    """The text of character ids (the inverse of `encode` on `VOCAB`'s characters).

    >>> decode(encode("x = 1\\n"))
    'x = 1\\n'
    """
    return "".join(VOCAB[int(i)] for i in ids)


class CharLM(nn.Module):
    """Token embedding + learned positions, causal pre-LN blocks, LayerNorm, Linear head."""

    kind = "CharLM"

    def __init__(self, config: ModelConfig, vocab_size: int = len(VOCAB)) -> None:
        self.config = config
        e = config.embed_dim
        self.tok = nn.Embedding(vocab_size, e)
        self.pos = nn.LearnedPositionalEmbedding(config.context, e)
        self.blocks = [nn.TransformerBlock(e, config.num_heads, causal=True)
                       for _ in range(config.num_layers)]
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, vocab_size)

    def children(self) -> dict[str, nn.Module]:
        blocks = {f"blocks.{i}": b for i, b in enumerate(self.blocks)}
        return {"tok": self.tok, "pos": self.pos, **blocks, "norm": self.norm, "head": self.head}

    def init(self, key: object) -> dict:
        keys = pyasg.random.split(key, 4 + len(self.blocks))
        params = {"tok": self.tok.init(keys[0]), "pos": self.pos.init(keys[1]),
                  "blocks": {str(i): b.init(k) for i, (b, k) in
                             enumerate(zip(self.blocks, keys[4:]))},
                  "norm": self.norm.init(keys[2]), "head": self.head.init(keys[3])}
        # N(0, 1) token rows (PyTorch's Embedding) swamp the 0.02 positions; GPT-2 uses 0.02.
        params["tok"]["weight"] *= 0.02
        return params

    def __call__(self, params: dict, ids: object) -> object:
        """Logits [batch, time, vocab] for integer ids [batch, time]."""
        x = self.pos(params["pos"], self.tok(params["tok"], ids))
        for i, block in enumerate(self.blocks):
            x = block(params["blocks"][str(i)], x)
        return self.head(params["head"], self.norm(params["norm"], x))


def batch(data: np.ndarray, seed: int, step: int, batch_size: int,
          context: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-character targets [batch_size, context] for training step `step`.

    Drawn from a generator seeded by (seed, step) alone, so a resumed run sees exactly
    the batches an uninterrupted one would have.

    >>> x, y = batch(np.arange(100, dtype=np.int32), seed=0, step=1, batch_size=2, context=4)
    >>> bool((y == x + 1).all()), x.shape
    (True, (2, 4))
    """
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(data) - context - 1, size=batch_size)
    rows = starts[:, None] + np.arange(context + 1)[None, :]
    window = data[rows]
    return window[:, :-1], window[:, 1:]


class Trainer:
    """The demo's model, optimiser, jitted step, and where it is in training."""

    def __init__(self, config: ModelConfig, *, seed: int = 0, backend: str = "numpy",
                 lr: float = 3e-3, batch_size: int = 16, data: np.ndarray | None = None) -> None:
        self.config, self.seed, self.backend = config, seed, backend
        self.batch_size = batch_size
        self.model = CharLM(config)
        self.opt = AdamW(lr=lr, weight_decay=0.01)
        self.params = self.model.init(pyasg.random.key(seed))
        self.opt_state = self.opt.init(self.params)
        self.step = 0
        self.data = encode(load_corpus()) if data is None else data
        self._compile()

    @property
    def optimizer(self) -> AdamW:
        """The optimiser (the model lab reads its schedule and slots)."""
        return self.opt

    def replace_model(self, model: CharLM, params: dict, opt_state: dict) -> None:
        """Train `model` from the next step on, from `params` and `opt_state` (the model
        lab's changes, `pyasg.train.lab.ModelLab`): the step is compiled again."""
        self.model, self.params, self.opt_state = model, params, opt_state
        self._compile()

    def _compile(self) -> None:
        """The jitted training step and forward of the model as it is now."""
        model, opt, backend = self.model, self.opt, self.backend
        v = len(VOCAB)

        def loss_fn(params: dict, x: object, y: object) -> object:
            logits = model(params, x)
            return cross_entropy(pyasg.reshape(logits, (-1, v)), pyasg.reshape(y, (-1,)))

        def train_step(params: dict, opt_state: dict, x: object, y: object) -> tuple:
            loss, grads = pyasg.value_and_grad(loss_fn)(params, x, y)
            grads, _ = clip_grad_norm(grads, max_norm=1.0)
            params, opt_state = opt.update(grads, opt_state, params)
            return params, opt_state, loss

        def logits_fn(params: dict, ids: object) -> object:
            return pyasg.softmax(model(params, ids), axis=-1)

        self._train_step = pyasg.jit(train_step, backend=backend, name="charlm_train_step")
        self._probs = pyasg.jit(logits_fn, backend=backend, name="charlm_forward")

    # -- checkpoints

    def save(self, directory: str | Path, loss: float) -> Path:
        """Write a checkpoint of the current step into `directory`."""
        manager = pyasg.io.CheckpointManager(directory, max_to_keep=3)
        return manager.save(self.step, to_numpy(self.params), opt_state=to_numpy(self.opt_state),
                            metadata={"loss": float(loss), "model": asdict(self.config),
                                      "seed": self.seed, "example": "charlm"})

    @classmethod
    def resume(cls, directory: str | Path, **kwargs: Any) -> Trainer:
        """A trainer at the newest checkpoint in `directory` (sizes from its metadata)."""
        checkpoint = pyasg.io.CheckpointManager(directory).load_latest()
        if checkpoint is None:
            raise CheckpointError(f"charlm: --resume {directory}: no checkpoint there "
                                  f"(make one with --save {directory})")
        meta = checkpoint.metadata.get("model")
        try:
            config = ModelConfig(**meta)
        except TypeError:
            raise CheckpointError(f"charlm: {directory}: step {checkpoint.step} is not a charlm "
                                  f"checkpoint (its metadata has no model sizes)") from None
        trainer = cls(config, **kwargs)
        want = pyasg.tree_map(lambda a: np.shape(a), trainer.params)
        got = pyasg.tree_map(lambda a: np.shape(a), checkpoint.params)
        if want != got:
            raise CheckpointError(f"charlm: {directory}: step {checkpoint.step} has parameters "
                                  f"of other names or shapes than this model")
        trainer.params, trainer.opt_state = checkpoint.params, checkpoint.opt_state
        trainer.step = checkpoint.step
        record = Path(directory) / RECORD
        if record.exists():  # the model-lab changes of the run, up to this checkpoint
            model = replayed(trainer.model, load_changes(record), until=checkpoint.step)
            trainer.replace_model(model, trainer.params, trainer.opt_state)
        return trainer

    # -- training and sampling

    def train_step(self) -> float:
        """One optimisation step on the next batch; returns its loss (before the update)."""
        self.step += 1
        x, y = batch(self.data, self.seed, self.step, self.batch_size, self.config.context)
        self.params, self.opt_state, loss = self._train_step(self.params, self.opt_state, x, y)
        return float(to_numpy(loss))

    def sample(self, prompt: str, length: int, temperature: float = 0.8,
               seed: int = 0) -> str:
        """`length` characters after `prompt`, sampled at `temperature`.

        Every call of the forward sees a [1, context] window: the text so far, right-
        padded while shorter (causal attention keeps padding after position i from
        changing position i's output) and its last `context` characters once longer. One
        shape, so the forward is traced and compiled once.
        """
        rng = np.random.default_rng(seed)
        ids = list(encode(prompt)) or [0]
        T = self.config.context
        out: list[int] = []
        for _ in range(length):
            window = ids[-T:]
            x = np.zeros((1, T), np.int32)
            x[0, :len(window)] = window
            probs = np.asarray(to_numpy(self._probs(self.params, x)), np.float64)
            p = probs[0, len(window) - 1]
            if temperature > 0:
                logp = np.log(np.maximum(p, 1e-30)) / temperature
                p = np.exp(logp - logp.max())
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            else:
                nxt = int(p.argmax())
            ids.append(nxt)
            out.append(nxt)
        return decode(out)


def _publish_cost(trainer: Trainer) -> None:
    """Show the viewer what each node of the training step costs (a few timed steps on
    copies of the arguments: the run's weights are not touched)."""
    x, y = batch(trainer.data, trainer.seed, trainer.step, trainer.batch_size,
                 trainer.config.context)
    publish_cost(measure(trainer._train_step, trainer.params, trainer.opt_state, x, y,
                         repeat=3, warmup=1))


def parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The demo's flags (shared by ``pyasg demo`` and ``pyasg run charlm``)."""
    p = example_parser(__doc__.splitlines()[0], steps=1200, prog=prog)
    p.add_argument("--save", metavar="DIR", help="write checkpoints into DIR")
    p.add_argument("--save-every", type=positive_int, metavar="N",
                   help="also checkpoint every N steps (with --save or --resume)")
    p.add_argument("--resume", metavar="DIR",
                   help="continue from the newest checkpoint in DIR for --steps more steps")
    p.add_argument("--visualize", "-v", action="store_true",
                   help="open the live viewer (graph, loss, the step's cost per node, the "
                        "model lab); needs pyasg[viewer]")
    p.add_argument("--lang", default="en", help="the viewer's language: en or ru")
    p.add_argument("--sample-length", type=int, default=300, metavar="N",
                   help="characters to generate after training (default 300; 0: none)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="sampling temperature (default 0.8; 0: always the likeliest)")
    p.add_argument("--prompt", default="def ", help="text the sample starts from")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


def _train(args: argparse.Namespace) -> dict[str, float]:
    kwargs = {"seed": args.seed, "backend": args.backend}
    trainer = (Trainer.resume(args.resume, **kwargs) if args.resume
               else Trainer(ModelConfig(), **kwargs))
    save_to = args.save or args.resume
    start = trainer.step
    n_params = sum(np.size(a) for a in pyasg.tree_leaves(trainer.params))
    print(f"charlm: {len(trainer.data):,} characters of Python's standard library "
          f"({stdlib_dir()}); {n_params:,} parameters; backend {args.backend}"
          + (f"; resuming at step {start} from {args.resume}" if args.resume else ""))
    first = last = float("nan")
    t0 = time.perf_counter()
    record = Path(save_to) / RECORD if save_to else None
    lab = None
    if args.visualize:  # the changes made so far stay in the record
        applied = load_changes(record) if args.resume and record and record.exists() else ()
        lab = ModelLab(record=record, applied=applied)
    if lab is not None:
        lab.on_fit_start(trainer)  # the viewer's lab panel: what can be changed
    with progress(args.steps, "charlm", initial=start, disable=args.quiet) as bar:
        for _ in range(args.steps):
            last = trainer.train_step()
            if trainer.step == start + 1:
                first = last
                t0 = time.perf_counter()  # steps/s without the first step's compilation
                if args.visualize:
                    _publish_cost(trainer)
            report_step(trainer.step, last)
            if lab is not None:
                made = len(lab.changes)
                lab.on_step_end(trainer, {"loss": last})  # changes asked in the viewer
                if len(lab.changes) != made and lab.changes[-1].what != "lr":
                    _publish_cost(trainer)  # a new step: its own heat map
            bar.set_postfix(loss=f"{last:.3f}", refresh=False)
            bar.update()
            if save_to and args.save_every and trainer.step % args.save_every == 0:
                trainer.save(save_to, last)
    seconds = time.perf_counter() - t0
    if save_to:
        path = trainer.save(save_to, last)
        print(f"charlm: saved step {trainer.step} to {path}")
    rate = (args.steps - 1) / seconds if args.steps > 1 and seconds > 0 else float("nan")
    sample = ""
    if args.sample_length > 0:
        sample = trainer.sample(args.prompt, args.sample_length, args.temperature, args.seed)
        print(f"--- sample (temperature {args.temperature}) ---\n{args.prompt}{sample}\n---")
    return finish("charlm", {"first_loss": first, "final_loss": last,
                             "steps": float(args.steps), "start_step": float(start),
                             "steps_per_s": rate, "seconds": seconds,
                             "sample_length": float(len(sample))})


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train the character-level model on `argv`'s flags; print and return its metrics."""
    args = parser().parse_args(argv)
    lang = resolve_lang(args.lang)  # warns on stderr, naming the choices, and falls back
    if args.temperature < 0:
        raise PyasgError(f"charlm: --temperature must be >= 0, got {args.temperature}")
    if not args.visualize:
        return _run(args)
    with viewer.launch(lang=lang) as handle:
        metrics = _run(args)
        if handle.alive:
            print("charlm: training finished; close the viewer window to exit", file=sys.stderr)
            handle.process.join()
    return metrics


def _run(args: argparse.Namespace) -> dict[str, float]:
    try:
        metrics = _train(args)
    except BaseException as e:
        events.publish(events.RunFinished(error=repr(e)))
        raise
    events.publish(events.RunFinished(None))
    return metrics


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
