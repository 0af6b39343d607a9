"""The benchmark's training steps in numpy, written by hand: forward, a manual backward,
SGD in place, as a careful person would write them without a framework.

"Careful" here means: activations and gradients for the fixed batch size are
allocated once and reused (`out=`, in-place updates), the convolutions are im2col
plus one matmul, the gradient of the input batch is never computed, and the
parameters are updated in place. Each class takes a `benchmarks.workloads.Workload`
(its config, params and learning rate), copies the params, and its `step(x, y)`
returns the loss and updates `self.params` (same tree as pyasg's).

>>> from benchmarks.workloads import mlp
>>> w = mlp(batch=4, sizes=(6, 5, 3))
>>> model = make(w)
>>> bool(model.step(w.x, w.y) > 0), model.params["2"]["weight"].shape
(True, (3, 5))
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

try:  # scipy's erf is vectorised; numpy has none
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover - scipy is a dev dependency
    _erf = np.frompyfunc(math.erf, 1, 1)

F32 = np.float32


def _copy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    return np.array(tree, dtype=F32)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray, dlogits: np.ndarray) -> float:
    """Mean softmax cross-entropy; writes d loss / d logits into `dlogits`."""
    n = logits.shape[0]
    np.subtract(logits, logits.max(axis=1, keepdims=True), out=dlogits)
    rows = np.arange(n)
    picked = dlogits[rows, labels].copy()
    np.exp(dlogits, out=dlogits)
    total = dlogits.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(total[:, 0]) - picked))
    dlogits /= total
    dlogits[rows, labels] -= 1.0
    dlogits *= 1.0 / n
    return loss


class MLP:
    """W1: Linear/ReLU stack, softmax cross-entropy, SGD."""

    def __init__(self, w: Any) -> None:
        self.params = _copy(w.params)
        self.lr = F32(w.lr)
        sizes, n = w.config["sizes"], w.config["batch"]
        self.names = sorted(self.params, key=int)  # "0", "2", "4": the Linear layers
        # activations (after ReLU, in place) and their gradients, one per layer
        self.acts = [np.empty((n, s), F32) for s in sizes[1:]]
        self.grads = [np.empty((n, s), F32) for s in sizes[1:]]
        self.gw = [np.empty_like(self.params[k]["weight"]) for k in self.names]

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        params, acts, last = self.params, self.acts, len(self.names) - 1
        h = x
        for i, name in enumerate(self.names):
            p = params[name]
            np.matmul(h, p["weight"].T, out=acts[i])
            acts[i] += p["bias"]
            if i < last:
                np.maximum(acts[i], 0.0, out=acts[i])
            h = acts[i]
        loss = _cross_entropy(acts[last], y, self.grads[last])
        for i in range(last, -1, -1):
            p, g = params[self.names[i]], self.grads[i]
            below = x if i == 0 else acts[i - 1]
            np.matmul(g.T, below, out=self.gw[i])
            gb = g.sum(axis=0)
            if i > 0:  # no gradient for the input batch
                np.matmul(g, p["weight"], out=self.grads[i - 1])
                self.grads[i - 1] *= acts[i - 1] > 0  # ReLU: its output > 0 where it passed
            self.gw[i] *= self.lr
            p["weight"] -= self.gw[i]
            p["bias"] -= self.lr * gb
        return loss


# --------------------------------------------------------------------------- transformer


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                eps: float = 1e-5) -> tuple[np.ndarray, tuple]:
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = np.multiply(xc, rstd, out=xc)
    return xhat * gamma + beta, (xhat, rstd)


def _layer_norm_back(dy: np.ndarray, cache: tuple, gamma: np.ndarray,
                     need_dx: bool = True) -> tuple:
    xhat, rstd = cache
    axes = tuple(range(dy.ndim - 1))
    dgamma = np.sum(dy * xhat, axis=axes)
    dbeta = dy.sum(axis=axes)
    if not need_dx:
        return None, dgamma, dbeta
    dxhat = dy * gamma
    mean_d = dxhat.mean(axis=-1, keepdims=True)
    mean_dx = np.mean(dxhat * xhat, axis=-1, keepdims=True)
    dxhat -= mean_d
    dxhat -= xhat * mean_dx
    dxhat *= rstd
    return dxhat, dgamma, dbeta


def _linear_back(dy2: np.ndarray, x2: np.ndarray, p: dict, lr: F32,
                 need_dx: bool = True) -> np.ndarray | None:
    """For y = x W^T + b on rows [M, in] -> [M, out]: dx; updates W and b in place."""
    dx = dy2 @ p["weight"] if need_dx else None  # before the update: the old weights
    gw = dy2.T @ x2
    gw *= lr
    p["weight"] -= gw
    p["bias"] -= lr * dy2.sum(axis=0)
    return dx


class Transformer:
    """W2: pre-LN causal transformer blocks (exact GELU FFN), MSE loss, SGD."""

    def __init__(self, w: Any) -> None:
        c = w.config
        self.params = _copy(w.params)
        self.lr = F32(w.lr)
        self.B, self.T, self.E, self.H = c["batch"], c["seq"], c["d_model"], c["heads"]
        self.D = self.E // self.H
        self.scale = F32(1.0 / math.sqrt(self.D))
        T = self.T
        self.blocked = np.triu(np.ones((T, T), bool), 1)  # key after query: blocked
        self.names = sorted(self.params, key=int)
        B, H = self.B, self.H
        # per block, the attention scores / probabilities [B, H, T, T] are kept for the
        # backward pass; allocated once
        self.probs = [np.empty((B, H, T, T), F32) for _ in self.names]
        self.dscores = np.empty((B, H, T, T), F32)

    def _heads(self, a: np.ndarray) -> np.ndarray:  # [B*T, E] -> [B, H, T, D]
        return a.reshape(self.B, self.T, self.H, self.D).transpose(0, 2, 1, 3)

    def _join(self, a: np.ndarray) -> np.ndarray:  # [B, H, T, D] -> [B*T, E]
        return a.transpose(0, 2, 1, 3).reshape(self.B * self.T, self.E)

    def _block_forward(self, i: int, p: dict, x: np.ndarray) -> tuple[np.ndarray, dict]:
        BT, E = self.B * self.T, self.E
        n1, ln1 = _layer_norm(x, p["norm1"]["weight"], p["norm1"]["bias"])
        a = p["attn"]
        q = n1 @ a["w_q"]["weight"].T + a["w_q"]["bias"]
        k = n1 @ a["w_k"]["weight"].T + a["w_k"]["bias"]
        v = n1 @ a["w_v"]["weight"].T + a["w_v"]["bias"]
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        s = np.matmul(qh, kh.transpose(0, 1, 3, 2), out=self.probs[i])
        s *= self.scale
        s[..., self.blocked] = -np.inf
        s -= s.max(axis=-1, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
        o = self._join(s @ vh)
        x1 = x + (o @ a["w_o"]["weight"].T + a["w_o"]["bias"]).reshape(x.shape)
        n2, ln2 = _layer_norm(x1, p["norm2"]["weight"], p["norm2"]["bias"])
        n2r = n2.reshape(BT, E)
        f = p["ff"]
        h = n2r @ f["fc1"]["weight"].T
        h += f["fc1"]["bias"]
        cdf = _erf(h * F32(1.0 / math.sqrt(2.0)))
        cdf += 1.0
        cdf *= 0.5
        g = h * cdf
        out = x1 + (g @ f["fc2"]["weight"].T + f["fc2"]["bias"]).reshape(x.shape)
        cache = {"n1": n1.reshape(BT, E), "ln1": ln1, "qh": qh, "kh": kh, "vh": vh, "o": o,
                 "ln2": ln2, "n2": n2r, "h": h, "cdf": cdf, "g": g}
        return out, cache

    def _block_backward(self, i: int, p: dict, c: dict, dout: np.ndarray) -> np.ndarray | None:
        BT, E, lr = self.B * self.T, self.E, self.lr
        shape = dout.shape
        f, a = p["ff"], p["attn"]
        dg = _linear_back(dout.reshape(BT, E), c["g"], f["fc2"], lr)
        # exact GELU: d/dh [h Φ(h)] = Φ(h) + h φ(h)
        h = c["h"]
        pdf = np.exp(h * h * F32(-0.5))
        pdf *= F32(1.0 / math.sqrt(2.0 * math.pi))
        pdf *= h
        pdf += c["cdf"]
        dg *= pdf
        dn2 = _linear_back(dg, c["n2"], f["fc1"], lr)
        dx1, dgam, dbet = _layer_norm_back(dn2.reshape(shape), c["ln2"], p["norm2"]["weight"])
        p["norm2"]["weight"] -= lr * dgam
        p["norm2"]["bias"] -= lr * dbet
        dx1 += dout
        do = _linear_back(dx1.reshape(BT, E), c["o"], a["w_o"], lr)
        doh = self._heads(do)
        probs = self.probs[i]
        dv = np.matmul(probs.transpose(0, 1, 3, 2), doh)
        dp = np.matmul(doh, c["vh"].transpose(0, 1, 3, 2), out=self.dscores)
        # softmax backward: ds = p * (dp - sum(dp * p)); blocked entries have p = 0
        dp -= np.sum(dp * probs, axis=-1, keepdims=True)
        dp *= probs
        dp *= self.scale
        dq = np.matmul(dp, c["kh"])
        dk = np.matmul(dp.transpose(0, 1, 3, 2), c["qh"])
        dn1 = _linear_back(self._join(dq), c["n1"], a["w_q"], lr)
        dn1 += _linear_back(self._join(dk), c["n1"], a["w_k"], lr)
        dn1 += _linear_back(self._join(dv), c["n1"], a["w_v"], lr)
        # the first block's input is the batch, which needs no gradient
        dx, dgam, dbet = _layer_norm_back(dn1.reshape(shape), c["ln1"], p["norm1"]["weight"],
                                          need_dx=i > 0)
        p["norm1"]["weight"] -= lr * dgam
        p["norm1"]["bias"] -= lr * dbet
        if dx is None:
            return None
        dx += dx1
        return dx

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        caches = []
        h = x
        for i, name in enumerate(self.names):
            h, cache = self._block_forward(i, self.params[name], h)
            caches.append(cache)
        diff = np.subtract(h, y, out=h)
        loss = float(np.mean(diff * diff))
        diff *= F32(2.0 / diff.size)
        d = diff
        for i in range(len(self.names) - 1, -1, -1):
            d = self._block_backward(i, self.params[self.names[i]], caches[i], d)
        return loss


# --------------------------------------------------------------------------- CNN


class CNN:
    """W3: two (conv 3x3 pad 1 by im2col, ReLU, 2x2 max-pool) stages, Linear, CE, SGD."""

    def __init__(self, w: Any) -> None:
        c = w.config
        self.params = _copy(w.params)
        self.lr = F32(w.lr)
        self.n, self.s = c["batch"], c["image"]
        c0, c1, c2 = c["channels"]
        n, s = self.n, self.s
        # padded inputs of the two convolutions (borders stay zero) and the logits' grad
        self.pad = [np.zeros((n, c0, s + 2, s + 2), F32),
                    np.zeros((n, c1, s // 2 + 2, s // 2 + 2), F32)]
        self.dpad = np.zeros((n, c1, s // 2 + 2, s // 2 + 2), F32)
        self.dlogits = np.empty((n, c["classes"]), F32)

    @staticmethod
    def _im2col(xp: np.ndarray) -> np.ndarray:
        """Padded [N, C, H+2, W+2] -> columns [N, C*9, H*W] (C, kh, kw order: as the
        weight's reshape to [O, C*9])."""
        n, ch, hp, wp = xp.shape
        win = sliding_window_view(xp, (3, 3), axis=(2, 3))  # [N, C, H, W, 3, 3]
        return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, ch * 9, (hp - 2) * (wp - 2))

    def _conv(self, xp: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray]:
        cols = self._im2col(xp)
        w = p["weight"]
        out = np.matmul(w.reshape(w.shape[0], -1), cols)  # [N, O, H*W]
        out += p["bias"][:, None]
        return out, cols

    def _conv_back(self, dout: np.ndarray, cols: np.ndarray, p: dict,
                   dxp: np.ndarray | None) -> None:
        """Updates the conv's params; with `dxp`, writes d loss / d padded input there."""
        w = p["weight"]
        wf = w.reshape(w.shape[0], -1)
        if dxp is not None:
            dcols = np.matmul(wf.T, dout)  # [N, C*9, H*W]; old weights
            n, ch, hp, wp = dxp.shape
            h, wd = hp - 2, wp - 2
            dcols = dcols.reshape(n, ch, 3, 3, h, wd)
            dxp.fill(0.0)
            for i in range(3):  # col2im: add each kernel offset's share back
                for j in range(3):
                    dxp[:, :, i:i + h, j:j + wd] += dcols[:, :, i, j]
        gw = np.matmul(dout, cols.transpose(0, 2, 1)).sum(axis=0)
        gw *= self.lr
        wf -= gw
        p["bias"] -= self.lr * dout.sum(axis=(0, 2))

    @staticmethod
    def _pool(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """2x2 max-pool of [N, C, H, W]; also the index (0..3) of each window's first max."""
        n, ch, h, w = a.shape
        win = a.reshape(n, ch, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        win = win.reshape(n, ch, h // 2, w // 2, 4)
        idx = win.argmax(axis=-1)
        return np.take_along_axis(win, idx[..., None], -1)[..., 0], idx

    @staticmethod
    def _pool_back(dy: np.ndarray, idx: np.ndarray) -> np.ndarray:
        n, ch, h2, w2 = dy.shape
        dwin = np.zeros((n, ch, h2, w2, 4), F32)
        np.put_along_axis(dwin, idx[..., None], dy[..., None], -1)
        return dwin.reshape(n, ch, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
            n, ch, 2 * h2, 2 * w2)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        p, n, s = self.params, self.n, self.s
        p0, p1 = self.pad
        p0[:, :, 1:-1, 1:-1] = x
        a1, cols1 = self._conv(p0, p["0"])
        np.maximum(a1, 0.0, out=a1)
        m1, idx1 = self._pool(a1.reshape(n, -1, s, s))
        p1[:, :, 1:-1, 1:-1] = m1
        a2, cols2 = self._conv(p1, p["3"])
        np.maximum(a2, 0.0, out=a2)
        m2, idx2 = self._pool(a2.reshape(n, -1, s // 2, s // 2))
        flat = m2.reshape(n, -1)
        fc = p["7"]
        logits = flat @ fc["weight"].T
        logits += fc["bias"]
        loss = _cross_entropy(logits, y, self.dlogits)

        dflat = _linear_back(self.dlogits, flat, fc, self.lr)
        da2 = self._pool_back(dflat.reshape(m2.shape), idx2).reshape(a2.shape)
        da2 *= a2 > 0
        self._conv_back(da2, cols2, p["3"], self.dpad)
        da1 = self._pool_back(self.dpad[:, :, 1:-1, 1:-1], idx1).reshape(a1.shape)
        da1 *= a1 > 0
        self._conv_back(da1, cols1, p["0"], None)  # no gradient for the input batch
        return loss


CLASSES = {"W1": MLP, "W2": Transformer, "W3": CNN}


def make(w: Any) -> MLP | Transformer | CNN:
    """The hand-written numpy model for workload `w` (a `Workload`), with a copy of its
    params."""
    return CLASSES[w.name](w)
