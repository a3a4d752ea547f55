"""ctypes bindings of QuantKit's C interface (Sources/CQuantKit/include/quantkit.h)."""
from __future__ import annotations

import ctypes
import os
import pathlib
import subprocess
import sys

ABI_VERSION = 1


class Options(ctypes.Structure):
    _fields_ = [
        ("method", ctypes.c_int32), ("bits", ctypes.c_int32), ("group_size", ctypes.c_int32),
        ("symmetric", ctypes.c_int32), ("format", ctypes.c_int32), ("act_order", ctypes.c_int32),
        ("static_groups", ctypes.c_int32), ("damping", ctypes.c_double), ("samples", ctypes.c_int32),
        ("sequence_length", ctypes.c_int32), ("seed", ctypes.c_uint64), ("max_shard_bytes", ctypes.c_int64),
        ("resume", ctypes.c_int32),
    ]


class TensorView(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("dtype", ctypes.c_char_p), ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * 8), ("data", ctypes.c_void_p), ("byte_count", ctypes.c_int64),
    ]


PROGRESS = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_char_p)

_handle = ctypes.c_void_p
_status = ctypes.c_int32

_SIGNATURES = {
    "qk_version": ([], ctypes.c_char_p),
    "qk_last_error": ([], ctypes.c_char_p),
    "qk_blas_core": ([], ctypes.c_char_p),
    "qk_blas_recommended_core": ([], ctypes.c_char_p),
    "qk_blas_self_test": ([], _status),
    "qk_options_init": ([ctypes.POINTER(Options), ctypes.c_int32], _status),
    "qk_quantizer_create": ([ctypes.POINTER(Options), ctypes.c_int64, ctypes.POINTER(_handle)], _status),
    "qk_quantizer_add_activations": ([_handle, ctypes.c_void_p, ctypes.c_int64], _status),
    "qk_quantizer_set_hessian": ([_handle, ctypes.c_void_p], _status),
    "qk_quantizer_quantize": ([_handle, ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(_handle)], _status),
    "qk_quantizer_free": ([_handle], None),
    "qk_layer_relative_error": ([_handle], ctypes.c_double),
    "qk_layer_rtn_relative_error": ([_handle], ctypes.c_double),
    "qk_layer_dequantized": ([_handle, ctypes.c_void_p, ctypes.c_int64], _status),
    "qk_layer_awq_scales": ([_handle, ctypes.c_void_p, ctypes.c_int64], _status),
    "qk_layer_format": ([_handle], ctypes.c_int32),
    "qk_layer_options": ([_handle, ctypes.POINTER(Options)], _status),
    "qk_layer_pack": ([_handle, ctypes.c_int32, ctypes.c_char_p, ctypes.POINTER(_handle)], _status),
    "qk_layer_free": ([_handle], None),
    "qk_pack": ([ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int32,
                 ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_char_p, ctypes.POINTER(_handle)], _status),
    "qk_unpack": ([ctypes.POINTER(TensorView), ctypes.c_int64, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                   ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p], _status),
    "qk_tensors_count": ([_handle], ctypes.c_int64),
    "qk_tensors_get": ([_handle, ctypes.c_int64, ctypes.POINTER(TensorView)], _status),
    "qk_tensors_free": ([_handle], None),
    "qk_safetensors_read": ([ctypes.c_char_p, ctypes.POINTER(_handle)], _status),
    "qk_safetensors_write": ([ctypes.c_char_p, ctypes.POINTER(TensorView), ctypes.c_int64], _status),
    "qk_quantize_model": ([ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(Options), PROGRESS, ctypes.c_void_p], _status),
}


def library_path() -> str:
    """The shared library: $QUANTKIT_LIBRARY, the copy installed with the package, or the
    repository's .build/release next to this source tree."""
    if os.environ.get("QUANTKIT_LIBRARY"):
        return os.environ["QUANTKIT_LIBRARY"]
    here = pathlib.Path(__file__).resolve().parent
    for candidate in [here / "libQuantKitC.so", here.parent.parent / ".build" / "release" / "libQuantKitC.so"]:
        if candidate.exists():
            return str(candidate)
    raise ImportError("libQuantKitC.so not found: build it (swift build -c release --product QuantKitC) and "
                      "pip install ./python, or set QUANTKIT_LIBRARY to its path")


def _choose_blas_kernels(path: str) -> None:
    """OpenBLAS reads OPENBLAS_CORETYPE once, when it is loaded: ask a child process which kernels
    QuantKit would choose for this CPU (the same rule as the quantkit executable) and set it
    before loading the library here. A value the user set is kept; QUANTKIT_BLAS_AUTOSELECT=0
    turns this off."""
    if "OPENBLAS_CORETYPE" in os.environ or os.environ.get("QUANTKIT_BLAS_AUTOSELECT") == "0":
        return
    probe = ("import ctypes,sys; lib=ctypes.CDLL(sys.argv[1]); lib.qk_blas_recommended_core.restype=ctypes.c_char_p; "
             "lib.qk_blas_core.restype=ctypes.c_char_p; print(lib.qk_blas_recommended_core().decode(), lib.qk_blas_core().decode())")
    try:
        answer = subprocess.run([sys.executable, "-c", probe, path], capture_output=True, text=True, timeout=60, check=True).stdout.split()
    except (subprocess.SubprocessError, OSError):
        return
    if len(answer) == 2:
        core, loaded = answer
        os.environ["OPENBLAS_CORETYPE"] = core
        os.environ["QUANTKIT_BLAS_SELECTED"] = f"{core} from {loaded}"


def load() -> ctypes.CDLL:
    path = library_path()
    _choose_blas_kernels(path)
    lib = ctypes.CDLL(path)
    for name, (args, result) in _SIGNATURES.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = result
    if os.environ.get("QUANTKIT_BLAS_SELECTED") and lib.qk_blas_self_test() != 0:
        raise ImportError(f"QuantKit: {lib.qk_last_error().decode()}; set QUANTKIT_BLAS_AUTOSELECT=0 to keep OpenBLAS's own kernels")
    return lib


lib = load()
