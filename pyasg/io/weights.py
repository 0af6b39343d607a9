"""Weights as safetensors files: keys are dotted pytree paths, every file validated on load.

`save(path, params, metadata)` writes one tensor per leaf, named by its path
(`blocks.0.attn.w_q.weight`), with the library version, the tree's structure and
a CRC-32 of header and data, atomically (see `atomic_write`). `load(path)`
gives the pytree back with every dtype and bit preserved; `load(path, expected=…)`
also checks every name, shape and dtype against a pytree (of arrays or anything
with `.shape` and `.dtype`, such as `TensorType`) and reports all differences in
one `CheckpointError`. Files are checked before any tensor is trusted: header
length, JSON, dtypes, shapes, and that the tensors tile the data region exactly.

Files written by PyTorch load with the same names; `pyasg.io.torch_names` maps
attention's packed projections.

>>> import tempfile, os, numpy as np
>>> params = {"fc": {"weight": np.eye(2, dtype=np.float32), "bias": np.zeros(2, np.int64)}}
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> _ = save(path, params, metadata={"note": "identity"})
>>> loaded = load(path, expected=params)
>>> loaded["fc"]["bias"].dtype, read_metadata(path)["note"]
(dtype('int64'), 'identity')
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from pyasg._version import __version__
from pyasg.errors import CheckpointError, PyasgError, shorten, shown, shown_path
from pyasg.io.atomic import PathLike, atomic_write
from pyasg.io.paths import checked_path, open_regular
from pyasg.trace.tree import TreeDef, flatten_with_paths, unflatten

#: safetensors dtype codes numpy can hold, as little-endian numpy dtypes (the format's order).
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("|b1"), "U8": np.dtype("|u1"), "I8": np.dtype("|i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"), "U64": np.dtype("<u8"), "I64": np.dtype("<i8"),
    "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
}
_CODES = {(d.kind, d.itemsize): code for code, d in DTYPES.items()}

#: The safetensors specification's limit on the JSON header; a larger one is a lie.
MAX_HEADER_BYTES = 100_000_000

#: Header metadata keys pyasg writes; users may not set keys that start with "pyasg.".
VERSION_KEY, TREE_KEY, CRC_KEY = "pyasg.version", "pyasg.tree", "pyasg.crc32"
_INTERNAL_KEYS = frozenset({TREE_KEY, CRC_KEY, "pyasg.checkpoint"})
_OWN_KEYS = (VERSION_KEY, TREE_KEY, CRC_KEY)  # every file `save` writes has all three


# --------------------------------------------------------------------------- pytree <-> tensors


#: How many names an error lists before it says how many more there are.
MAX_LISTED = 20


def _fail(path: object, message: str) -> CheckpointError:
    return CheckpointError(f"{shown_path(path)}: {message}")


def _listed(names: list[str]) -> str:
    """Names for an error message: the first `MAX_LISTED`, each cut short, then a count."""
    listed = ", ".join(shorten(n, 80) for n in names[:MAX_LISTED])
    more = len(names) - MAX_LISTED
    return listed + (f" and {more} more" if more > 0 else "")


def _as_array(leaf: Any, name: str, path: object) -> np.ndarray:
    """A leaf as a C-contiguous little-endian array of a dtype safetensors can store."""
    try:
        if hasattr(leaf, "detach"):  # a torch tensor: numpy cannot read one that needs grad
            leaf = leaf.detach().cpu().numpy()
        arr = np.asarray(leaf)
    except PyasgError:
        raise
    except Exception as e:
        raise _fail(path, f"{shown(name)} is not an array ({type(e).__name__}: "
                          f"{shorten(str(e))})") from None
    code = _CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise _fail(path, f"{shown(name)} has dtype {arr.dtype}, which a safetensors file "
                          f"cannot hold (bool, int8-64, uint8-64, float16/32/64 can)")
    # safetensors.numpy writes raw memory from the array's start: a strided view would be
    # saved wrong, so copy to C order (and to little-endian, the format's byte order)
    return np.asarray(arr, dtype=DTYPES[code], order="C")  # (ascontiguousarray makes 0-d 1-d)


def _encode_tree(treedef: TreeDef, path: object) -> Any:
    """The pytree's structure as JSON, for the header: leaves 0, None null, containers
    {"dict": [[key, child], …]} / {"list": […]} / {"tuple": […]}."""
    kind = treedef.kind
    if kind == "leaf":
        return 0
    if kind == "none":
        return None
    kids = [_encode_tree(c, path) for c in treedef.children]
    if kind in ("dict", "namedtuple", "custom"):  # a class cannot be stored: a dict
        keys = treedef.keys
        for k in keys:
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise _fail(path, f"dict key {shown(k)} cannot be saved; keys must be str or int")
        return {"dict": [[k, c] for k, c in zip(keys, kids)]}
    return {kind: kids}


def checksum(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    """CRC-32 of what the file says (metadata, names, dtypes, shapes) and of every tensor's
    bytes in name order: catches damage that still parses, which the size checks cannot."""
    described = json.dumps({"metadata": {k: v for k, v in metadata.items() if k != CRC_KEY},
                            "tensors": {n: [a.dtype.str, a.shape] for n, a in arrays.items()}},
                           sort_keys=True)
    crc = zlib.crc32(described.encode("utf-8"))
    for name in sorted(arrays):
        arr = arrays[name]
        if arr.size:
            crc = zlib.crc32(arr.reshape(-1).view(np.uint8), crc)
    return f"{crc:08x}"


def _tensors(tree: Any, path: object) -> tuple[dict[str, np.ndarray], str]:
    """Dotted path -> array for every leaf, and the tree's structure as JSON text."""
    pairs, treedef = flatten_with_paths(tree)
    if treedef.kind == "leaf":
        raise _fail(path, "a bare array has no name to save it under; save a dict such as "
                          "{'weight': array}")
    tensors: dict[str, np.ndarray] = {}
    for name, leaf in pairs:
        if name in tensors:  # {"a.b": x, "a": {"b": y}} would collide in the file
            raise _fail(path, f"two leaves have the same path {shown(name)}")
        tensors[name] = _as_array(leaf, name, path)
    return tensors, json.dumps(_encode_tree(treedef, path))


def _user_metadata(metadata: Mapping[str, str] | None, path: object) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise _fail(path, f"metadata must be a dict of str to str, got {type(metadata).__name__}")
    out = {}
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise _fail(path, f"metadata must map str to str (the safetensors header holds "
                              f"text only); got {shown(k)}: {shown(v)}")
        if k.startswith("pyasg.") or k == "__metadata__":
            raise _fail(path, f"metadata key {shown(k)} is reserved")
        out[k] = v
    return out


def write_tree(path: PathLike, tree: Any, metadata: Mapping[str, str],
               function: str = "pyasg.io.save") -> Path:
    """Write `tree` with header `metadata` (str -> str, trusted) atomically; the checkpoint
    module uses this for its reserved keys. Most code wants `save`. A bad `path` is an
    error naming `function`."""
    import safetensors.numpy  # only writing uses it: reading checks the format itself

    path = checked_path(path, function)
    tensors, tree_json = _tensors(tree, path)
    header = {**metadata, VERSION_KEY: __version__, TREE_KEY: tree_json}
    header[CRC_KEY] = checksum(tensors, header)

    def write(tmp: Path) -> None:
        try:
            safetensors.numpy.save_file(tensors, tmp, metadata=header)
        except OSError:
            raise
        except Exception as e:  # SafetensorError and friends from the Rust side
            raise _fail(path, f"safetensors could not write it ({type(e).__name__}: "
                              f"{shorten(str(e))})") from None
        with open(tmp, "rb") as f:  # never rename into place what `load` would refuse
            _read_header(f, path)

    return atomic_write(path, write)


def save(path: PathLike, params: Any, metadata: Mapping[str, str] | None = None) -> Path:
    """Save a pytree of arrays to a safetensors file at `path`, atomically; returns the path.

    Keys are the leaves' dotted paths; `metadata` (str -> str) goes in the header next
    to pyasg's own keys (`pyasg.version`, the tree structure, a CRC-32). Dtypes are
    kept exactly (bool, int8-64, uint8-64, float16/32/64).

    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> _ = save(path, {"layers": [{"weight": np.ones((2, 3), np.float32)}]})
    >>> list(load_flat(path))
    ['layers.0.weight']
    """
    path = checked_path(path, "pyasg.io.save")
    return write_tree(path, params, _user_metadata(metadata, path))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data region, which starts after the header
    end: int


@dataclass(frozen=True)
class _Header:
    entries: dict[str, _Entry]  # in the header's order
    metadata: dict[str, str]
    data_start: int


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {shown(k, 60)} appears twice")
        out[k] = v
    return out


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _entry(name: str, info: object, path: object) -> _Entry:
    where = f"tensor {shown(name)}"
    if not name:
        raise _fail(path, "a tensor has an empty name")
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise _fail(path, f"{where}: header entry must have exactly dtype, shape, data_offsets")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        hint = " (convert it to float32 before saving)" if code in ("BF16", "F8_E4M3",
                                                                     "F8_E5M2") else ""
        raise _fail(path, f"{where}: dtype {code!r:.30} has no numpy equivalent{hint}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise _fail(path, f"{where}: shape must be a list of non-negative integers")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_int, offsets))
            or not 0 <= offsets[0] <= offsets[1]):
        raise _fail(path, f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end")
    dtype = DTYPES[code]
    need = prod(shape) * dtype.itemsize
    if offsets[1] - offsets[0] != need:
        raise _fail(path, f"{where}: {code}{shape} needs {need} bytes but its data_offsets "
                          f"{offsets} span {offsets[1] - offsets[0]}")
    return _Entry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _read_header(f: BinaryIO, path: object) -> _Header:
    """Parse and check the header of the open file `f`: every claim it makes about sizes
    must agree with the file's real size, so reading the tensors afterwards is safe."""
    size = os.fstat(f.fileno()).st_size
    first = f.read(8)
    if len(first) < 8:
        raise _fail(path, f"not a safetensors file, or truncated: {size} bytes is less than "
                          f"the 8-byte header length")
    n = int.from_bytes(first, "little")
    if n > size - 8:
        raise _fail(path, f"not a safetensors file, or truncated: the header claims {n} bytes "
                          f"but only {size - 8} follow")
    if n > MAX_HEADER_BYTES:
        raise _fail(path, f"header of {n} bytes exceeds the safetensors limit of "
                          f"{MAX_HEADER_BYTES}")
    raw = f.read(n)
    if len(raw) != n or not raw.startswith(b"{"):
        raise _fail(path, "not a safetensors file: the header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _fail(path, f"not a safetensors file: bad JSON header ({str(e)[:80]})") from None
    if not isinstance(header, dict):
        raise _fail(path, "not a safetensors file: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "__metadata__ must map strings to strings")
    entries = {name: _entry(name, info, path) for name, info in header.items()}
    data_size = size - 8 - n
    end = max((e.end for e in entries.values()), default=0)
    if end > data_size:
        raise _fail(path, f"truncated: the header places tensor data up to byte {end} of the "
                          f"data region, but the file holds only {data_size}")
    at = 0  # the tensors must tile the data region: no overlaps, no gaps, nothing after
    for e in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if e.begin != at:
            what = "overlaps the one before it" if e.begin < at else f"leaves a gap at {at}"
            raise _fail(path, f"header lies about offsets: tensor {shown(e.name)} {what}")
        at = e.end
    if at != data_size:
        raise _fail(path, f"{data_size - at} bytes after the last tensor are not described "
                          f"by the header")
    return _Header(entries, metadata, 8 + n)


def read_header(path: PathLike, function: str = "pyasg.io.read_metadata",
                ) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """The tensors' (dtype name, shape) by key, and the full header metadata, read and
    checked without loading any tensor data (a bad `path` is an error naming `function`)."""
    path = checked_path(path, function)
    with open_regular(path) as f:
        try:
            header = _read_header(f, path)
        except OSError as e:
            raise _fail(path, f"cannot read ({e.strerror or e})") from None
    return ({e.name: (e.dtype.name, e.shape) for e in header.entries.values()},
            header.metadata)


def read_metadata(path: PathLike) -> dict[str, str]:
    """The header metadata of a safetensors file: the user's keys and `pyasg.version`.

    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> _ = save(path, {"w": np.zeros(1)}, metadata={"epoch": "3"})
    >>> sorted(read_metadata(path))
    ['epoch', 'pyasg.version']
    """
    _, metadata = read_header(path, "pyasg.io.read_metadata")
    return {k: v for k, v in metadata.items() if k not in _INTERNAL_KEYS}


def read_tensors(path: PathLike, function: str = "pyasg.io.load",
                 ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor (fresh, writable arrays) and the metadata; all checks done first (a
    bad `path` is an error naming `function`)."""
    path = checked_path(path, function)
    with open_regular(path) as f:
        try:
            header = _read_header(f, path)
            arrays: dict[str, np.ndarray] = {}
            for e in sorted(header.entries.values(), key=lambda e: e.begin):  # read forwards
                try:
                    arr = np.empty(e.shape, e.dtype)
                except (ValueError, OverflowError):  # a zero-size shape with absurd sides
                    raise _fail(path, f"tensor {shown(e.name)}: numpy cannot make an array of "
                                      f"shape {list(e.shape)}") from None
                if arr.size:
                    f.seek(header.data_start + e.begin)
                    if f.readinto(arr.reshape(-1).view(np.uint8)) != arr.nbytes:
                        raise _fail(path, f"truncated while reading tensor {shown(e.name)} (the "
                                          f"file changed under us?)")
                    if e.dtype.kind == "b" and arr.view(np.uint8).max() > 1:
                        raise _fail(path, f"tensor {shown(e.name)}: BOOL bytes must be 0 or 1")
                arrays[e.name] = arr
        except OSError as e:
            raise _fail(path, f"cannot read ({e.strerror or e})") from None
    own = [k for k in _OWN_KEYS if k in header.metadata]
    if own and len(own) != len(_OWN_KEYS):  # a pyasg file whose header lost a key
        raise _fail(path, f"damaged: the header has {', '.join(own)} but not "
                          f"{', '.join(k for k in _OWN_KEYS if k not in own)}")
    if own:
        crc = checksum(arrays, header.metadata)
        if crc != header.metadata[CRC_KEY]:
            raise _fail(path, f"damaged: its CRC-32 is {crc}, the header says "
                              f"{header.metadata[CRC_KEY]:.8}")
    return {name: arrays[name] for name in header.entries}, header.metadata


def load_flat(path: PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file by its key, as PyTorch's `load_file` gives them
    (in the saved tree's order for pyasg's files; in the header's, sorted, otherwise).

    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> _ = save(path, {"a": {"b": np.arange(3)}})
    >>> load_flat(path)["a.b"].tolist()
    [0, 1, 2]
    """
    path = checked_path(path, "pyasg.io.load_flat")
    arrays, metadata = read_tensors(path)
    if TREE_KEY not in metadata:
        return arrays
    return dict(flatten_with_paths(tree_from_tensors(arrays, metadata, path))[0])


# --------------------------------------------------------------------------- trees from keys


def _nest(flat: Mapping[str, Any], path: object) -> dict:
    """Nested dicts from dotted keys: "a.b" -> {"a": {"b": …}}; flattening gives them back."""
    root: dict = {}
    for name, value in flat.items():
        *parents, last = name.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise _fail(path, f"key {shown(name)} lies under another tensor's key")
        if last in node:
            raise _fail(path, f"key {shown(name)} is both a tensor and a prefix of other keys")
        node[last] = value
    return root


def _decode_tree(node: object, prefix: str, arrays: Mapping[str, np.ndarray],
                 used: list[str], path: object) -> Any:
    """Rebuild the saved structure (see `_encode_tree`), taking leaves from `arrays`."""
    if _is_int(node) and node == 0:
        if prefix not in arrays:
            raise _fail(path, f"the stored tree names {shown(prefix)}, which has no tensor")
        used.append(prefix)
        return arrays[prefix]
    if node is None:
        return None
    if not isinstance(node, dict) or len(node) != 1:
        raise _fail(path, f"the stored tree is malformed at {shown(prefix)}")
    (kind, kids), = node.items()
    if kind not in ("dict", "list", "tuple") or not isinstance(kids, list):
        raise _fail(path, f"the stored tree is malformed at {shown(prefix)}")

    def sub(key: object) -> str:
        return f"{prefix}.{key}" if prefix else str(key)

    if kind == "dict":
        out = {}
        for item in kids:
            if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                    or not isinstance(item[0], (str, int)) or item[0] in out):
                raise _fail(path, f"the stored tree is malformed at {shown(prefix)}")
            out[item[0]] = _decode_tree(item[1], sub(item[0]), arrays, used, path)
        return out
    items = [_decode_tree(c, sub(i), arrays, used, path) for i, c in enumerate(kids)]
    return items if kind == "list" else tuple(items)


def tree_from_tensors(arrays: dict[str, np.ndarray], metadata: Mapping[str, str],
                    path: object) -> Any:
    text = metadata.get(TREE_KEY)
    if text is None:  # not written by pyasg (PyTorch, say): nested dicts from the keys
        return _nest(arrays, path)
    used: list[str] = []
    try:
        tree = _decode_tree(json.loads(text), "", arrays, used, path)
    except (ValueError, RecursionError):
        raise _fail(path, "the stored tree structure is not valid JSON") from None
    if len(used) != len(arrays) or set(used) != set(arrays):
        raise _fail(path, "the stored tree structure does not match the tensors")
    return tree


def _leaf_spec(leaf: Any) -> tuple[tuple[int, ...], str]:
    shape = tuple(leaf.shape) if hasattr(leaf, "shape") else np.shape(leaf)
    dtype = getattr(leaf, "dtype", None)
    return tuple(int(d) for d in shape), (np.asarray(leaf).dtype if dtype is None
                                          else np.dtype(str(dtype))).name


def match(arrays: Mapping[str, np.ndarray], expected: Any, path: object) -> Any:
    """`arrays` (by dotted path) arranged as the pytree `expected`, after checking that the
    names, shapes and dtypes agree; every difference is listed in one `CheckpointError`."""
    pairs, treedef = flatten_with_paths(expected)
    problems: list[str] = []
    wanted = dict(pairs)
    missing = [name for name, _ in pairs if name not in arrays]
    unexpected = [name for name in arrays if name not in wanted]
    if missing:
        problems.append("missing: " + _listed(missing))
    if unexpected:
        problems.append("unexpected: " + _listed(unexpected))
    for name, leaf in pairs:
        if name not in arrays:
            continue
        try:
            shape, dtype = _leaf_spec(leaf)
        except (TypeError, ValueError):
            raise _fail(path, f"expected[{shown(name)}] has no shape and dtype: "
                              f"{type(leaf).__name__}") from None
        got = arrays[name]
        if got.shape != shape:
            problems.append(f"{shown(name)} has shape {list(got.shape)}, expected {list(shape)}")
        elif got.dtype.name != dtype:
            problems.append(f"{shown(name)} has dtype {got.dtype.name}, expected {dtype}")
    if problems:
        raise _fail(path, "does not match the expected tree:\n  " + "\n  ".join(problems))
    return unflatten(treedef, [arrays[name] for name, _ in pairs])


def load(path: PathLike, expected: Any = None) -> Any:
    """Load a safetensors file as a pytree; with `expected`, check it and take its structure.

    Without `expected`, the structure saved by `save` comes back (dicts, lists, tuples;
    a namedtuple as a dict of its fields); a file from elsewhere gives nested dicts split
    at the dots. With `expected` (a pytree of arrays, or of anything with `.shape` and
    `.dtype`), every missing, unexpected, mis-shaped or mis-typed key is reported in one
    `CheckpointError`, and the result has exactly `expected`'s structure. A damaged,
    truncated or foreign file raises `CheckpointError` naming the path; nothing is
    returned half-loaded.

    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> _ = save(path, {"w": np.zeros((2, 2), np.float32)})
    >>> load(path, expected={"w": np.zeros((3, 2), np.float32), "b": np.zeros(3)})
    Traceback (most recent call last):
    pyasg.errors.CheckpointError: ...: does not match the expected tree:
      missing: b
      'w' has shape [2, 2], expected [3, 2]
      ...
    """
    path = checked_path(path, "pyasg.io.load")
    arrays, metadata = read_tensors(path)
    if expected is not None:
        return match(arrays, expected, path)
    return tree_from_tensors(arrays, metadata, path)
