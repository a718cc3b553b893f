"""Read a PyTorch state dict saved in the legacy (non-zip) ``torch.save`` format with numpy only, no torch.

Every pickle in the file goes through a restricted unpickler that accepts only the few names a plain state dict
uses (tensors, storages, OrderedDict) and refuses everything else, so a tampered file cannot run code: the header
pickles (magic number, protocol, system info, storage keys) admit no name at all.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

_STORAGE_DTYPES: dict[str, Any] = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_MAGIC = 0x1950A86A20F9469CFC6C


class _TensorRef:
    def __init__(self, storage: dict[str, Any], offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage: dict[str, Any], offset: int, size: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _PlainUnpickler(pickle.Unpickler):
    """Plain values only (ints, strings, dicts, lists): any global or persistent reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("unexpected persistent reference in a weights file header")


class _Unpickler(pickle.Unpickler):
    def __init__(self, fh: Any, storages: dict[str, dict[str, Any]]) -> None:
        super().__init__(fh)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid: Any) -> Any:
        _kind, storage_type, key, _location, numel = pid[:5]
        if storage_type not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type}")
        return self.storages.setdefault(key, {"dtype": _STORAGE_DTYPES[storage_type], "numel": numel, "data": None})


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as fh:
        if _PlainUnpickler(fh).load() != _MAGIC:
            raise ValueError(f"{path}: not a legacy torch.save file")
        _PlainUnpickler(fh).load()  # protocol version
        _PlainUnpickler(fh).load()  # sys info
        storages: dict[str, dict[str, Any]] = {}
        obj = _Unpickler(fh, storages).load()
        keys = _PlainUnpickler(fh).load()
        for key in keys:
            st = storages[key]
            (numel,) = struct.unpack("<q", fh.read(8))
            itemsize = np.dtype(st["dtype"]).itemsize
            buf = fh.read(numel * itemsize)
            if len(buf) != numel * itemsize:
                raise ValueError(f"{path}: truncated weights file")
            st["data"] = np.frombuffer(buf, dtype=st["dtype"])
    out: dict[str, np.ndarray] = {}
    for name, ref in obj.items():
        data = ref.storage["data"]
        if not ref.size:
            out[name] = data[ref.offset: ref.offset + 1].reshape(()).copy()
            continue
        strides = [s * data.itemsize for s in ref.stride]
        out[name] = np.lib.stride_tricks.as_strided(data[ref.offset:], shape=ref.size, strides=strides).copy()
    return out
