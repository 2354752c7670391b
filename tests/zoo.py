"""A zoo of small Brevitas models, built and exported at test time (no files checked in).

``build(name, directory) -> Path`` trains nothing: it builds the network, randomizes weights and
BatchNorm statistics so every activation level is used, calibrates the activation scales on
random data, and exports with the spec's path (export_qonnx with dynamo False/True, or QCDQ).
Other test suites use the session fixture ``zoo`` from tests/conftest.py."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ZooSpec", "SPECS", "NAMES", "build", "make_network", "export"]


@dataclass(frozen=True)
class ZooSpec:
    widths: tuple[int, ...]
    input: str  # "int8", "uint4", "int2", "uint1", "bipolar" (1-bit signed Quant), ...
    weights: str  # "ternary", "int2", "int4", "int8", "bipolar"
    acts: str  # "relu2", "identity2", "hardtanh3", "relu1", "bipolar", ...
    export: str = "qonnx"  # "qonnx" (dynamo=False), "dynamo" (dynamo=True), "qcdq", "qcdq_dynamo"
    bn: bool = True
    negative_gamma: bool = True
    bias: bool = False
    per_channel: bool = False
    final_quant: str | None = None  # an activation quantizer after the last layer, e.g. "identity8"
    seed: int = 0


SPECS: dict[str, ZooSpec] = {
    # close to the seed design: ternary weights, 8-bit input, BN + 2-bit ReLU, odd widths
    "ternary_w2a2": ZooSpec((37, 53, 29, 5), "int8", "ternary", "relu2"),
    # non-narrow INT2 weights {-2..1}, unsigned 4-bit input, 3-bit ReLU, biases, dynamo Gemm with bias
    "int2_uint4_bias_dynamo": ZooSpec((24, 37, 11), "uint4", "int2", "relu3", export="dynamo", bias=True),
    # bipolar weights, signed 2-bit input, signed 2-bit QuantIdentity activations, no BN
    "bipolar_w_signed_a2": ZooSpec((29, 53, 7), "int2", "bipolar", "identity2", bn=False),
    # per-channel INT4 weights, signed 3-bit QuantHardTanh, biases (Gemm transB=1 from dynamo=False)
    "perchannel_int4_hardtanh3": ZooSpec((40, 64, 32, 4), "int8", "int4", "hardtanh3", bias=True, per_channel=True),
    # the QCDQ export path: QuantizeLinear/Clip/DequantizeLinear
    "qcdq_ternary_w2a2": ZooSpec((40, 37, 29, 4), "int8", "ternary", "relu2", export="qcdq"),
    # unsigned 2-bit input, 3-bit ReLU; dynamo export without bias (the bias-less Gemm qonnx trips on).
    # (Brevitas exports every 1-bit activation quantizer, even an unsigned one, as BipolarQuant, so
    # 1-bit unsigned inputs are covered by hand-built models in tests/frontend.)
    "uint2_relu3_dynamo": ZooSpec((16, 29, 9), "uint2", "ternary", "relu3", export="dynamo"),
    # 1-bit signed (bipolar) input, bipolar weights and activations, ending in a quantizer
    "bipolar_all": ZooSpec((32, 37, 10), "bipolar", "bipolar", "bipolar", bn=True, final_quant="bipolar"),
    # unsigned 4-bit input, 8-bit weights per channel, ends in a signed 8-bit output quantizer
    "int8w_final_quant": ZooSpec((20, 29, 6), "uint4", "int8", "relu2", per_channel=True, bias=True,
                                 final_quant="identity8", export="dynamo"),
    # signed 4-bit input, QCDQ with per-channel INT2 weights and signed activations
    "qcdq_int4in_identity3": ZooSpec((30, 53, 3), "int4", "int2", "identity3", export="qcdq", per_channel=True,
                                     bias=True),
    # unsigned 8-bit input, per-channel ternary weights with biases, signed 2-bit HardTanh
    "uint8_hardtanh2": ZooSpec((21, 45, 13, 3), "uint8", "ternary", "hardtanh2", per_channel=True, bias=True),
    # QCDQ through the dynamo exporter: float weights behind QuantizeLinear/Clip/DequantizeLinear
    "qcdq_dynamo_int4in": ZooSpec((24, 29, 5), "int4", "ternary", "relu2", export="qcdq_dynamo", bias=True),
    # the seed topology 40-256-128-64-32-4 (used by the simulator benchmark too), positive BN gammas
    "seed_w2a2": ZooSpec((40, 256, 128, 64, 32, 4), "int8", "int2", "relu2", negative_gamma=False),
    # ... and with negative BN gammas: non-narrow INT2 weights (-2 included) must stay INT2
    "seed_w2a2_negbn": ZooSpec((40, 256, 128, 64, 32, 4), "int8", "int2", "relu2", seed=3),
    # ternary weights with 8-bit activations (BitNet-style): 255 thresholds per channel
    "ternary_a8": ZooSpec((40, 64, 32, 4), "int8", "ternary", "relu8", seed=5),
}
NAMES: tuple[str, ...] = tuple(SPECS)


def _act_quant(kind: str):
    """kind like relu2 / identity3 / hardtanh3 / bipolar -> a Brevitas activation module."""
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat
    from brevitas.quant.binary import SignedBinaryActPerTensorConst

    if kind == "bipolar":
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    name = kind.rstrip("0123456789")
    bits = int(kind[len(name):])
    if name == "relu":
        return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)
    if name == "hardtanh":
        return qnn.QuantHardTanh(act_quant=Int8ActPerTensorFloat, bit_width=bits, max_val=1.0, min_val=-1.0,
                                 return_quant_tensor=True)
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)


def _input_quant(kind: str):
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    if kind == "bipolar":  # a 1-bit signed Quant, which qonnx executes as bipolar
        return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=1, return_quant_tensor=True)
    signed = kind.startswith("int")
    bits = int(kind.lstrip("uint"))
    quant = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
    return qnn.QuantIdentity(act_quant=quant, bit_width=bits, return_quant_tensor=True)


def _linear(spec: ZooSpec, fan_in: int, fan_out: int):
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat
    from brevitas.quant.binary import SignedBinaryWeightPerTensorConst

    if spec.weights == "bipolar":
        return qnn.QuantLinear(fan_in, fan_out, bias=spec.bias, weight_quant=SignedBinaryWeightPerTensorConst)
    base = Int8WeightPerChannelFloat if spec.per_channel else Int8WeightPerTensorFloat
    if spec.weights == "ternary":
        return qnn.QuantLinear(fan_in, fan_out, bias=spec.bias, weight_quant=base, weight_bit_width=2)
    bits = int(spec.weights[3:])
    wide = type("WideRange", (base,), {"narrow_range": False})  # INTk incl. -2^(k-1)
    return qnn.QuantLinear(fan_in, fan_out, bias=spec.bias, weight_quant=wide, weight_bit_width=bits)


def make_network(spec: ZooSpec):
    """The torch module for ``spec``, weights randomized, activation scales calibrated, BN
    statistics randomized (negative gammas where asked); returned in eval mode."""
    import torch

    torch.manual_seed(spec.seed)
    layers: list[torch.nn.Module] = [_input_quant(spec.input)]
    widths = spec.widths
    for index in range(len(widths) - 1):
        linear = _linear(spec, widths[index], widths[index + 1])
        with torch.no_grad():  # Brevitas' default init makes most 2-bit weights zero: spread them
            linear.weight.uniform_(-1.0, 1.0)
            if spec.bias:
                linear.bias.normal_(0.0, 2.0)
        layers.append(linear)
        last = index == len(widths) - 2
        if not last:
            if spec.bn:
                layers.append(torch.nn.BatchNorm1d(widths[index + 1]))
            layers.append(_act_quant(spec.acts))
    if spec.final_quant:
        layers.append(_act_quant(spec.final_quant))
    net = torch.nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(spec.seed + 1)
    net.train()
    with torch.no_grad():  # calibrate activation scales and BN statistics on random data
        for _ in range(6):  # Brevitas keeps a running estimate; a few batches spread the levels well
            net(torch.randn(512, widths[0], generator=gen) * 2.0)
    with torch.no_grad():
        for module in net:
            if isinstance(module, torch.nn.BatchNorm1d):
                n = module.num_features
                sign = torch.where(torch.rand(n, generator=gen) < 0.4, -1.0, 1.0) if spec.negative_gamma else 1.0
                module.weight.copy_(sign * (0.5 + torch.rand(n, generator=gen)))
                module.bias.copy_(torch.randn(n, generator=gen) * 0.5)
                module.running_mean.mul_(1.0 + 0.2 * torch.randn(n, generator=gen))
                module.running_var.mul_(0.5 + torch.rand(n, generator=gen))
    return net.eval()


def export(net, spec: ZooSpec, path: Path) -> Path:
    import torch
    from brevitas.export import export_onnx_qcdq, export_qonnx

    example = torch.randn(1, spec.widths[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.export in ("qcdq", "qcdq_dynamo"):
            export_onnx_qcdq(net, example, export_path=str(path), dynamo=spec.export == "qcdq_dynamo")
        else:
            export_qonnx(net, example, export_path=str(path), dynamo=spec.export == "dynamo")
    return path


def build(name: str, directory: str | Path) -> Path:
    """Build and export zoo model ``name`` into ``directory``; returns the .onnx path."""
    if name not in SPECS:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(NAMES)}")
    spec = SPECS[name]
    path = Path(directory) / f"{name}.onnx"
    return export(make_network(spec), spec, path)
