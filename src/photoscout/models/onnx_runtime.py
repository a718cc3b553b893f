"""ONNX Runtime sessions with the configured device and threads. CUDA is used when asked for or, with ``auto``,
when the CUDA execution provider is installed; it is never required."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from photoscout.common.errors import PhotoscoutError
from photoscout.models.base import RuntimeOptions


def providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if device == "cuda":
        if not has_cuda:
            raise PhotoscoutError("device = 'cuda' but ONNX Runtime has no CUDA provider here "
                                  "(install onnxruntime-gpu, or set device = 'auto' or 'cpu')")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "auto" and has_cuda:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def device_report(device: str) -> str:
    """Where models run with this ``device`` setting, in words (``config`` and ``doctor`` show it)."""
    import importlib.util

    import onnxruntime as ort

    available = ort.get_available_providers()
    try:
        chosen = providers(device)
    except PhotoscoutError as exc:
        return str(exc)
    where = "on the GPU (CUDA)" if chosen[0] == "CUDAExecutionProvider" else "on the CPU"
    line = f"device = {device}: built-in models run {where} (ONNX Runtime providers: {', '.join(available)})"
    if importlib.util.find_spec("torch") is not None:
        import torch

        line += "; hub models: " + (f"CUDA GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                                    and device != "cpu" else "CPU (torch sees no CUDA GPU)" if device != "cpu"
                                    else "CPU")
    return line


def session(path: Path, runtime: RuntimeOptions) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise PhotoscoutError(f"model file {path} is missing (run 'photoscout models verify')")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = runtime.threads or (os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    # idle worker threads sleep instead of spinning: a spinning thread takes a core from the database (a search
    # is a 2 ms model run between database queries) for no gain on batches
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers(runtime.device))
