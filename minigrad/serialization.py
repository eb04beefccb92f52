"""save / load: nested state dicts to an ``.npz`` file and back, atomically, without pickle.

A checkpoint is a zip archive of ``.npy`` files (NumPy's ``.npz`` layout), so ``np.load`` can
open it on its own:

- every array (a Tensor's ``.data``, an ndarray, a NumPy scalar) is one entry, named after the
  key path that leads to it (``state.0.exp_avg``);
- one more entry, ``__minigrad_structure__``, holds UTF-8 JSON describing everything else: the
  nesting of dicts, lists and tuples, dict keys in order, Python scalars, and which entry is
  which array.

Loading uses ``np.load(..., allow_pickle=False)`` and rebuilds the structure from JSON, so
loading a file never runs code from it, whoever wrote it.

Writing goes through `atomic_write`: the archive is written to a temporary file beside the
target, flushed to disk, then renamed over the target in one step. A crash or an error halfway
leaves the previous file exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
import zipfile
from collections import OrderedDict

import numpy as np

from minigrad.tensor import Tensor

STRUCTURE_ENTRY = "__minigrad_structure__"
FORMAT_NAME = "minigrad-checkpoint"
FORMAT_VERSION = 1

_ZIP_MAGIC = b"PK\x03\x04"
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9_.\-]")


class CheckpointError(ValueError):
    """The file is not a minigrad checkpoint, or it is damaged."""


# ----------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **open_kwargs):
    """Write `path` all at once or not at all.

    Yields a file object for a new temporary file in the same directory as `path` (the same
    file system, so the final rename is atomic). When the ``with`` block ends normally the file
    is flushed and fsync-ed, then ``os.replace``-d over `path`. When the block raises, the
    temporary file is deleted and `path` is untouched. `mode` is "wb" (bytes) or "w" (text);
    `open_kwargs` go to ``open`` (e.g. ``encoding="utf-8", newline=""`` for a CSV writer).
    """
    if mode not in ("w", "wt", "wb"):
        raise ValueError(
            f"atomic_write: mode must be 'w' (text) or 'wb' (bytes), as the file is replaced whole; got {mode!r}"
        )
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"atomic_write: cannot write {path!r}: directory {directory!r} does not exist")
    temporary_path = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with O_EXCL never clobbers an existing file; 0o666 lets the umask decide the
    # permissions, as a plain open() would (tempfile.mkstemp would force 0o600).
    descriptor = os.open(temporary_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_path)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX keeps directory entries in the directory's data).
    Some file systems cannot fsync a directory; the rename has happened either way."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# ----------------------------------------------------------------------------------------------
# save
# ----------------------------------------------------------------------------------------------


def save(obj, path) -> None:
    """Save `obj` to `path` (written exactly there; no suffix is added).

    `obj` may nest dicts (str or int keys; order kept; an OrderedDict comes back as an
    OrderedDict), lists and tuples (kept apart), Tensors (data, dtype and requires_grad; a
    Parameter comes back as a plain Tensor), ndarrays, NumPy scalars, and the Python scalars
    int, float, bool, None and str. Dtypes are kept exactly. Anything else raises TypeError
    naming where it was, before the file is touched. Objects appearing twice are stored twice.
    """
    encoder = _Encoder()
    structure = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": encoder.encode(obj, ())}
    structure_json = json.dumps(structure, allow_nan=False)
    structure_bytes = np.frombuffer(structure_json.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path, "wb") as file:
        with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            _write_entry(archive, STRUCTURE_ENTRY, structure_bytes)
            for name, array in encoder.arrays.items():
                _write_entry(archive, name, array)


def _write_entry(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    """One ``name.npy`` member, written exactly as ``np.savez`` writes it."""
    with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
        np.lib.format.write_array(member, array, allow_pickle=False)


def _describe(path: tuple) -> str:
    """A key path as Python would index it: ``obj['state'][0]['exp_avg']``."""
    return "obj" + "".join(f"[{key!r}]" for key in path)


class _Encoder:
    """Turns an object into JSON-ready nodes and collects its arrays under unique entry names."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        # ids of the containers on the way down, so a list that contains itself is refused
        # instead of recursing forever.
        self.open_containers: set[int] = set()

    def encode(self, obj, path: tuple) -> dict:
        # Exact type checks: bool is an int, np.float64 is a float, and each must come back as
        # what it was.
        if obj is None:
            return {"type": "none"}
        if type(obj) is bool:
            return {"type": "bool", "value": obj}
        if type(obj) is int:
            return {"type": "int", "value": obj}
        if type(obj) is float:
            # repr is the shortest string that reads back to the same float ('inf', 'nan' too);
            # a string keeps the JSON strict, which has no NaN or Infinity.
            return {"type": "float", "value": repr(obj)}
        if type(obj) is str:
            return {"type": "str", "value": obj}
        if isinstance(obj, Tensor):
            return {"type": "tensor", "requires_grad": obj.requires_grad, **self.add_array(obj.data, path)}
        if type(obj) is np.ndarray:
            return {"type": "ndarray", **self.add_array(obj, path)}
        if isinstance(obj, np.generic):
            return {"type": "numpy_scalar", **self.add_array(np.asarray(obj), path)}
        if isinstance(obj, (dict, list, tuple)):
            return self.encode_container(obj, path)
        raise TypeError(
            f"save: cannot save {_describe(path)} of type {type(obj).__module__}.{type(obj).__qualname__}; "
            "supported: dict, list, tuple, Tensor, np.ndarray, NumPy scalars, int, float, bool, str, None"
        )

    def encode_container(self, obj, path: tuple) -> dict:
        if id(obj) in self.open_containers:
            raise ValueError(f"save: {_describe(path)} contains itself; a checkpoint must be a tree")
        self.open_containers.add(id(obj))
        try:
            if isinstance(obj, dict):
                kind = "ordered_dict" if isinstance(obj, OrderedDict) else "dict"
                items = [[self.encode_key(key, path), self.encode(value, path + (key,))] for key, value in obj.items()]
                return {"type": kind, "items": items}
            kind = "tuple" if isinstance(obj, tuple) else "list"
            return {"type": kind, "items": [self.encode(value, path + (i,)) for i, value in enumerate(obj)]}
        finally:
            self.open_containers.discard(id(obj))

    @staticmethod
    def encode_key(key, path: tuple) -> dict:
        if type(key) is str:
            return {"type": "str", "value": key}
        if type(key) is int:
            return {"type": "int", "value": key}
        raise TypeError(
            f"save: {_describe(path)} has a key {key!r} of type {type(key).__name__}; dict keys must be str or int"
        )

    def add_array(self, array: np.ndarray, path: tuple) -> dict:
        if array.dtype.hasobject:
            raise TypeError(
                f"save: {_describe(path)} is an array of dtype {array.dtype} (Python objects), which "
                "cannot be stored without pickle; convert it to a numeric or string dtype"
            )
        name = self.unique_name(path)
        self.arrays[name] = array
        return {"array": name, "dtype": array.dtype.str, "shape": list(array.shape)}

    def unique_name(self, path: tuple) -> str:
        """The key path joined by dots, with characters a file name should not hold replaced
        (cut to a length every zip tool accepts; the JSON, not the name, says where it goes)."""
        base = _UNSAFE_NAME_CHARACTERS.sub("_", ".".join(str(key) for key in path))[:200] or "root"
        name, suffix = base, 1
        while name in self.arrays or name == STRUCTURE_ENTRY:
            suffix += 1
            name = f"{base}~{suffix}"
        return name


# ----------------------------------------------------------------------------------------------
# load
# ----------------------------------------------------------------------------------------------


def load(path):
    """Read back what `save` wrote. Never executes code from the file (no pickle).

    Raises FileNotFoundError when there is no such file, and CheckpointError when the file is
    not a minigrad checkpoint, holds pickled objects, or is damaged (truncated, corrupted).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no checkpoint at {path!r}")
    with open(path, "rb") as file:
        if file.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            raise CheckpointError(f"load: {path!r} is not a minigrad checkpoint (not an .npz / zip file)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if STRUCTURE_ENTRY not in archive.files:
                raise CheckpointError(
                    f"load: {path!r} is an .npz file but not a minigrad checkpoint (it has no "
                    f"{STRUCTURE_ENTRY!r} entry); read it with np.load instead"
                )
            structure = _read_structure(archive, path)
            return _Decoder(archive, path).decode(structure["root"])
    except CheckpointError:
        raise
    # Anything else that goes wrong while parsing bytes we did not write as expected (bad zip
    # records, CRC mismatches, short .npy data, flags zipfile cannot handle) means the file is
    # damaged; the original error stays attached as the cause.
    except Exception as error:
        if "allow_pickle" in str(error):
            raise CheckpointError(
                f"load: {path!r} contains pickled Python objects, which are refused because "
                "loading them could run arbitrary code"
            ) from error
        raise CheckpointError(f"load: {path!r} is damaged (truncated or corrupted): {error}") from error


def _read_structure(archive, path: str) -> dict:
    raw = archive[STRUCTURE_ENTRY]
    try:
        structure = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"load: {path!r} is damaged: its structure entry is not valid JSON ({error})") from error
    if not isinstance(structure, dict) or structure.get("format") != FORMAT_NAME or "root" not in structure:
        raise CheckpointError(f"load: {path!r} is damaged: its structure entry does not describe a checkpoint")
    version = structure.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"load: {path!r} has checkpoint format version {version!r}; this minigrad reads versions "
            f"up to {FORMAT_VERSION} (upgrade minigrad to read it)"
        )
    return structure


class _Decoder:
    """Rebuilds an object from the JSON nodes `_Encoder` made, reading arrays from the archive."""

    def __init__(self, archive, path: str):
        self.archive = archive
        self.path = path

    def damaged(self, what: str) -> CheckpointError:
        return CheckpointError(f"load: {self.path!r} is damaged: {what}")

    def decode(self, node):
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            return self.scalar(node, {"bool": bool, "int": int, "str": str}[kind])
        if kind == "float":
            return float(self.scalar(node, str))
        if kind == "tensor":
            return Tensor(self.array(node), requires_grad=node.get("requires_grad") is True)
        if kind == "ndarray":
            return self.array(node)
        if kind == "numpy_scalar":
            return self.array(node)[()]
        if kind in ("list", "tuple"):
            values = [self.decode(item) for item in self.items(node)]
            return tuple(values) if kind == "tuple" else values
        if kind in ("dict", "ordered_dict"):
            pairs = []
            for pair in self.items(node):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise self.damaged(f"a dict item is {pair!r}, expected [key, value]")
                pairs.append((self.key(pair[0]), self.decode(pair[1])))
            return OrderedDict(pairs) if kind == "ordered_dict" else dict(pairs)
        raise self.damaged(f"unknown node {node!r}")

    def scalar(self, node: dict, expected_type: type):
        value = node.get("value")
        if type(value) is not expected_type:
            raise self.damaged(f"expected a {expected_type.__name__} value in {node!r}")
        return value

    def items(self, node: dict) -> list:
        items = node.get("items")
        if not isinstance(items, list):
            raise self.damaged(f"a {node.get('type')} node has no item list")
        return items

    def key(self, node):
        if not (isinstance(node, dict) and node.get("type") in ("str", "int")):
            raise self.damaged(f"a dict key is {node!r}, expected a str or int key")
        return self.scalar(node, {"str": str, "int": int}[node["type"]])

    def array(self, node: dict) -> np.ndarray:
        name = node.get("array")
        if name not in self.archive.files:
            raise self.damaged(f"the array entry {name!r} is missing")
        array = self.archive[name]
        if array.dtype.str != node.get("dtype") or list(array.shape) != node.get("shape"):
            raise self.damaged(
                f"the array entry {name!r} has dtype {array.dtype.str} and shape {list(array.shape)}, "
                f"the structure says {node.get('dtype')} and {node.get('shape')}"
            )
        return array
