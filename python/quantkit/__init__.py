"""QuantKit from Python: GPTQ, AWQ, AWQ+GPTQ and RTN quantization of linear layers and whole
checkpoints, packing to the GPTQ / AutoAWQ / compressed-tensors layouts, safetensors I/O.

A thin numpy layer over QuantKit's C interface (libQuantKitC.so); every default is QuantKit's
recommended setting, the same as the ``quantkit`` command line's.

>>> import numpy as np, quantkit
>>> layer = quantkit.quantize_layer(weight, activations)          # GPTQ W4 g128, symmetric, act-order
>>> layer.tensors["qweight"].dtype, layer.relative_error
>>> quantkit.quantize_model("model/", "calib.txt", "model-gptq/", progress=True)
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ._native import PROGRESS, Options, TensorView, lib

__all__ = ["QuantKitError", "QuantizedLayer", "Unpacked", "quantize_layer", "quantize_model", "pack", "unpack",
           "read_safetensors", "write_safetensors", "recommended_options", "version", "blas_core"]

METHODS = {"rtn": 0, "gptq": 1, "awq": 2, "awq-gptq": 3}
FORMATS = {"gptq": 0, "gptq-v2": 1, "awq": 2, "compressed-tensors": 3}
_FORMAT_NAMES = {v: k for k, v in FORMATS.items()}
_STATUS = {1: "invalid argument", 2: "I/O error", 3: "format error", 4: "numerical error", 5: "out of memory",
           6: "interrupted", 7: "internal error"}
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "I16": np.int16,
           "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class QuantKitError(Exception):
    """A failed QuantKit call: ``status`` is the C status code, the message names the fault."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{_STATUS.get(status, f'status {status}')}: {message}")
        self.status = status
        self.message = message


def _check(status: int) -> None:
    if status != 0:
        raise QuantKitError(status, lib.qk_last_error().decode("utf-8", "replace"))


def version() -> str:
    return lib.qk_version().decode()


def blas_core() -> str:
    """The OpenBLAS kernel set in use (chosen for this CPU when the package was imported)."""
    return lib.qk_blas_core().decode()


def _tristate(v: bool | None) -> int:
    return -1 if v is None else int(bool(v))


def _options(method: str, bits: int, group_size: int | None, sym: bool | None, format: str | None,
             act_order: bool | None = None, static_groups: bool | None = None, damping: float | None = None,
             samples: int | None = None, seqlen: int | None = None, seed: int = 0,
             max_shard_bytes: int | None = None, resume: bool = False) -> Options:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)} or None (recommended), not {format!r}")
    o = Options()
    _check(lib.qk_options_init(ctypes.byref(o), METHODS[method]))
    o.bits = int(bits)
    o.group_size = -1 if group_size is None else int(group_size)
    o.symmetric = _tristate(sym)
    o.format = -1 if format is None else FORMATS[format]
    o.act_order = _tristate(act_order)
    o.static_groups = _tristate(static_groups)
    if damping is not None:
        o.damping = float(damping)
    if samples is not None:
        o.samples = int(samples)
    if seqlen is not None:
        o.sequence_length = int(seqlen)
    o.seed = int(seed)
    o.max_shard_bytes = int(max_shard_bytes or 0)
    o.resume = int(bool(resume))
    return o


def recommended_options(method: str = "gptq") -> dict:
    """QuantKit's recommended settings for ``method`` (what every function here uses by default)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    o = Options()
    _check(lib.qk_options_init(ctypes.byref(o), METHODS[method]))
    return {"method": method, "bits": o.bits, "group_size": o.group_size, "sym": bool(o.symmetric),
            "act_order": bool(o.act_order), "static_groups": bool(o.static_groups), "damping": o.damping,
            "samples": o.samples, "seqlen": o.sequence_length, "seed": o.seed}


def _matrix(a, name: str, dtype=np.float32) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    return a


def _pointer(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _tensor_list(handle: ctypes.c_void_p) -> dict[str, np.ndarray]:
    """Copies a qk_tensors into numpy arrays (BF16 widened to float32) and frees it."""
    try:
        out = {}
        for i in range(lib.qk_tensors_count(handle)):
            v = TensorView()
            _check(lib.qk_tensors_get(handle, i, ctypes.byref(v)))
            dtype = v.dtype.decode()
            shape = tuple(v.shape[k] for k in range(v.rank))
            raw = ctypes.string_at(v.data, v.byte_count) if v.byte_count else b""
            if dtype == "BF16":
                bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                array = bits.view(np.float32).reshape(shape)
            elif dtype in _DTYPES:
                array = np.frombuffer(raw, dtype=_DTYPES[dtype]).reshape(shape).copy()
            else:
                raise QuantKitError(3, f"tensor {v.name.decode()!r}: dtype {dtype} has no numpy equivalent")
            out[v.name.decode()] = array
        return out
    finally:
        lib.qk_tensors_free(handle)


def _views(tensors: Mapping[str, np.ndarray]) -> tuple[ctypes.Array, list]:
    """qk_tensor views of numpy arrays (kept alive by the returned list)."""
    keep = []
    views = (TensorView * max(len(tensors), 1))()
    for i, (name, a) in enumerate(tensors.items()):
        a = np.ascontiguousarray(a)
        if a.dtype not in _NAMES:
            raise ValueError(f"tensor {name!r}: numpy dtype {a.dtype} cannot be stored (use one of {sorted(map(str, _NAMES))})")
        if a.ndim > 8:
            raise ValueError(f"tensor {name!r}: rank {a.ndim} > 8")
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        encoded_name, encoded_dtype = name.encode(), _NAMES[a.dtype].encode()
        keep += [a, encoded_name, encoded_dtype]
        v = views[i]
        v.name, v.dtype, v.rank = encoded_name, encoded_dtype, a.ndim
        for k, d in enumerate(a.shape):
            v.shape[k] = d
        v.data, v.byte_count = a.ctypes.data, a.nbytes
    return views, keep


@dataclass
class QuantizedLayer:
    """A quantized linear layer.

    ``tensors``: the packed tensors exactly as the format stores them (e.g. ``qweight`` int32,
    ``qzeros`` int32, ``scales`` float16, ``g_idx`` int32 for GPTQ), with ``prefix.`` names when a
    prefix was given. ``dequantized``: float32 ``[out, in]``, the weight the layer applies to its
    unscaled input. ``awq_scales``: for the AWQ methods, the per-input-channel scales the input
    must be divided by (fold them into the previous norm or linear); ``None`` otherwise.
    """
    tensors: dict[str, np.ndarray]
    dequantized: np.ndarray
    relative_error: float | None
    rtn_relative_error: float | None
    awq_scales: np.ndarray | None
    method: str
    format: str
    bits: int
    group_size: int
    sym: bool
    options: dict = field(default_factory=dict)


def quantize_layer(weight, activations=None, *, hessian=None, method: str = "gptq", bits: int = 4,
                   group_size: int | None = 128, sym: bool | None = None, format: str | None = None,
                   act_order: bool | None = None, static_groups: bool | None = None, damping: float | None = None,
                   prefix: str = "") -> QuantizedLayer:
    """Quantizes ``weight`` (``[out, in]``) as ``quantkit quantize`` quantizes a linear.

    ``activations``: calibration inputs ``[tokens, in]`` (the AWQ methods need them); or
    ``hessian``: ``Σ xᵀx`` ``[in, in]`` up to a positive factor. ``sym``/``format``/``act_order``/
    ``static_groups``/``damping`` left as ``None`` take the recommended value for ``method``
    (GPTQ and RTN: symmetric, ``gptq`` layout; AWQ methods: asymmetric, ``awq`` layout at 4 bits;
    GPTQ methods: act-order with static groups).
    """
    w = _matrix(weight, "weight")
    out_features, in_features = w.shape
    options = _options(method, bits, group_size, sym, format, act_order, static_groups, damping)
    q = ctypes.c_void_p()
    _check(lib.qk_quantizer_create(ctypes.byref(options), in_features, ctypes.byref(q)))
    layer = ctypes.c_void_p()
    try:
        if activations is not None:
            x = _matrix(activations, "activations")
            if x.shape[1] != in_features:
                raise ValueError(f"activations are {x.shape} but the weight is {w.shape}: the widths must match")
            _check(lib.qk_quantizer_add_activations(q, _pointer(x), x.shape[0]))
        if hessian is not None:
            h = _matrix(hessian, "hessian", np.float64)
            if h.shape != (in_features, in_features):
                raise ValueError(f"hessian is {h.shape}, expected ({in_features}, {in_features})")
            _check(lib.qk_quantizer_set_hessian(q, _pointer(h)))
        _check(lib.qk_quantizer_quantize(q, _pointer(w), out_features, ctypes.byref(layer)))
        packed = ctypes.c_void_p()
        _check(lib.qk_layer_pack(layer, -1, prefix.encode(), ctypes.byref(packed)))
        tensors = _tensor_list(packed)
        dequantized = np.empty((out_features, in_features), dtype=np.float32)
        _check(lib.qk_layer_dequantized(layer, _pointer(dequantized), dequantized.size))
        scales = np.empty(in_features, dtype=np.float32)
        awq_scales = scales if lib.qk_layer_awq_scales(layer, _pointer(scales), in_features) == 0 else None
        rel, rtn = lib.qk_layer_relative_error(layer), lib.qk_layer_rtn_relative_error(layer)
        used = Options()
        _check(lib.qk_layer_options(layer, ctypes.byref(used)))
        return QuantizedLayer(tensors=tensors, dequantized=dequantized, relative_error=None if np.isnan(rel) else rel,
                              rtn_relative_error=None if np.isnan(rtn) else rtn, awq_scales=awq_scales, method=method,
                              format=_FORMAT_NAMES[used.format], bits=used.bits, group_size=used.group_size, sym=bool(used.symmetric),
                              options={"act_order": bool(used.act_order), "static_groups": bool(used.static_groups),
                                       "damping": used.damping})
    finally:
        lib.qk_layer_free(layer)
        lib.qk_quantizer_free(q)


@dataclass
class Unpacked:
    """An unpacked layer: ``dequantized`` float32 ``[out, in]`` and ``codes`` uint8 ``[out, in]``."""
    dequantized: np.ndarray
    codes: np.ndarray


def _shape_of(tensors: Mapping[str, np.ndarray], format: str, prefix: str, bits: int) -> tuple[int, int]:
    p = prefix + "." if prefix else ""
    try:
        if format == "compressed-tensors":
            return tuple(int(v) for v in np.asarray(tensors[p + "weight_shape"]).reshape(-1)[:2])
        out_features = tensors[p + "scales"].shape[1]
        if format == "awq":
            return out_features, tensors[p + "qweight"].shape[0]
        return out_features, tensors[p + "g_idx"].shape[0]
    except KeyError as e:
        raise QuantKitError(3, f"{format}: missing tensor {e.args[0]!r}") from None


def unpack(tensors: Mapping[str, np.ndarray], format: str, *, bits: int = 4, group_size: int | None = 128,
           sym: bool = True, prefix: str = "") -> Unpacked:
    """Decodes one packed layer (``tensors`` as ``QuantizedLayer.tensors`` or a checkpoint holds
    them, names under ``prefix``) in ``format`` with the given grid."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    out_features, in_features = _shape_of(tensors, format, prefix, bits)
    views, keep = _views(tensors)
    dequantized = np.empty((out_features, in_features), dtype=np.float32)
    codes = np.empty((out_features, in_features), dtype=np.uint8)
    _check(lib.qk_unpack(views, len(tensors), prefix.encode(), FORMATS[format], bits, -1 if group_size is None else group_size,
                         int(bool(sym)), out_features, in_features, _pointer(dequantized), _pointer(codes)))
    del keep
    return Unpacked(dequantized=dequantized, codes=codes)


def pack(codes, scales, zeros=None, g_idx=None, *, format: str, bits: int = 4, group_size: int | None = 128,
         sym: bool = True, prefix: str = "") -> dict[str, np.ndarray]:
    """Packs a layer given as integer ``codes`` (uint8 ``[out, in]``), ``scales`` (float32
    ``[groups, out]``), ``zeros`` (uint8 ``[groups, out]``; ``None``: the symmetric zero) and
    ``g_idx`` (int32 ``[in]``; ``None``: column // group_size) into ``format``'s tensors."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    c = np.ascontiguousarray(codes, dtype=np.uint8)
    if c.ndim != 2:
        raise ValueError(f"codes must be 2-D [out, in], got shape {c.shape}")
    out_features, in_features = c.shape
    groups = 1 if group_size in (None, -1) else -(-in_features // group_size)
    s = np.ascontiguousarray(scales, dtype=np.float32)
    if s.size != groups * out_features:
        raise ValueError(f"scales has {s.size} values, expected [groups={groups}, out={out_features}]")
    z = None if zeros is None else np.ascontiguousarray(zeros, dtype=np.uint8)
    if z is not None and z.size != groups * out_features:
        raise ValueError(f"zeros has {z.size} values, expected [groups={groups}, out={out_features}]")
    g = None if g_idx is None else np.ascontiguousarray(g_idx, dtype=np.int32)
    if g is not None and g.size != in_features:
        raise ValueError(f"g_idx has {g.size} values, expected in={in_features}")
    handle = ctypes.c_void_p()
    _check(lib.qk_pack(_pointer(c), _pointer(s), None if z is None else _pointer(z), None if g is None else _pointer(g),
                       out_features, in_features, bits, -1 if group_size is None else group_size, int(bool(sym)),
                       FORMATS[format], prefix.encode(), ctypes.byref(handle)))
    return _tensor_list(handle)


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file (BF16 widened to float32)."""
    handle = ctypes.c_void_p()
    _check(lib.qk_safetensors_read(os.fsencode(path), ctypes.byref(handle)))
    return _tensor_list(handle)


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, np.ndarray]) -> None:
    """Writes ``tensors`` (numpy arrays) to ``path``, replacing it atomically."""
    views, keep = _views(tensors)
    _check(lib.qk_safetensors_write(os.fsencode(path), views, len(tensors)))
    del keep


def _stderr_progress(done: int, total: int, stage: str) -> None:
    print(f"quantkit: block {done}/{total} {stage}", file=sys.stderr, flush=True)


def quantize_model(model_dir: str | os.PathLike, calib: str | os.PathLike | None, out: str | os.PathLike, *,
                   method: str = "gptq", bits: int = 4, group_size: int | None = 128, sym: bool | None = None,
                   format: str | None = None, act_order: bool | None = None, static_groups: bool | None = None,
                   damping: float | None = None, samples: int | None = None, seqlen: int | None = None, seed: int = 0,
                   max_shard_bytes: int | None = None, resume: bool = False,
                   progress: bool | Callable[[int, int, str], object] | None = None) -> dict:
    """Quantizes a Hugging Face checkpoint folder into ``out`` (which must not exist) and returns
    its report (``quantkit-report.json``).

    ``progress``: ``True`` prints a line per stage on stderr; a callable gets ``(completed_blocks,
    total_blocks, stage)`` and may return ``True`` to stop. A stop (or Ctrl-C) raises
    ``QuantKitError`` (or ``KeyboardInterrupt``) and leaves ``out`` as it was; the completed blocks
    stay in ``out.partial`` and the same call with ``resume=True`` continues them, byte-identically.

    Like the ``quantkit`` tool, it sets the process's allocator to keep the memory it frees (glibc's
    ``mallopt``: no ``mmap`` for large blocks, no trimming) for the rest of the process.
    """
    options = _options(method, bits, group_size, sym, format, act_order, static_groups, damping, samples, seqlen, seed,
                       max_shard_bytes, resume)
    report_progress = _stderr_progress if progress is True else progress or None
    interrupted = []

    def callback(_user, done, total, stage):
        try:
            if report_progress is not None and report_progress(done, total, stage.decode()) is True:
                return 1
            return 0
        except KeyboardInterrupt:
            interrupted.append(True)
            return 1
        except BaseException as e:  # an exception in the callback stops the run and is re-raised
            interrupted.append(e)
            return 1

    c_callback = PROGRESS(callback)
    status = lib.qk_quantize_model(os.fsencode(model_dir), None if calib is None else os.fsencode(calib),
                                   os.fsencode(out), ctypes.byref(options), c_callback, None)
    if interrupted and interrupted[0] is True:
        raise KeyboardInterrupt
    if interrupted:
        raise interrupted[0]
    _check(status)
    with open(os.path.join(os.fspath(out), "quantkit-report.json"), encoding="utf-8") as f:
        return json.load(f)
