"""FINN's own example MLPs, built at test time with random weights (no downloads):

* ``brevitas_examples.bnn_pynq`` FC models (shipped in the brevitas wheel): TFC 784-64-64-64-10,
  SFC 784-256x3-10, LFC 784-1024x3-10 at w1a1 / w1a2 / w2a2, exactly the library's module
  (``2x - 1`` preprocessing, QuantIdentity input, BatchNorm before each activation, TensorNorm).
* FINN's UNSW-NB15 cybersecurity MLP (end2end_example/cybersecurity): 600-64-64-64-1, 2-bit
  weights and ReLUs with biases and BatchNorm, exported behind ``(x + 1) / 2`` and ending in a
  bipolar QuantIdentity, as FINN's notebook exports it (plus a 2-bit input quantizer: qmlp needs
  one where FINN annotates the input as bipolar by hand).

BatchNorm statistics are calibrated on random inputs and then randomized (negative gammas
included) so every activation level is used. ``build(name, directory) -> Path``."""

from __future__ import annotations

import warnings
from pathlib import Path

__all__ = ["FC_SIZES", "PATTERNS", "NAMES", "build", "make_network"]

FC_SIZES = {"tfc": (64, 64, 64), "sfc": (256, 256, 256), "lfc": (1024, 1024, 1024)}
_BITS = {"w1a1": (1, 1), "w1a2": (1, 2), "w2a2": (2, 2)}
# Patterns users write (issue 13): a QuantReLU then a QuantIdentity (a requantization); BatchNorm
# after the activation followed by a quantizer (lowerable) or straight into the next layer (refused).
PATTERNS = ("requant_relu_identity", "bn_after_act_quant", "bn_after_act_matmul")
NAMES = tuple(f"{net}_{bits}" for net in FC_SIZES for bits in _BITS) + ("unsw_mlp_w2a2",) + PATTERNS


def _randomize_norms(net, seed: int, calibrate) -> None:
    import torch

    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for bn in norms:
        bn.momentum = None  # cumulative: the running statistics become the calibration data's
    net.train()
    with torch.no_grad():
        for _ in range(4):
            calibrate(gen)
    net.eval()
    with torch.no_grad():
        for bn in norms:
            n = bn.num_features
            sign = torch.where(torch.rand(n, generator=gen) < 0.3, -1.0, 1.0)
            bn.weight.copy_(sign * (0.5 + torch.rand(n, generator=gen)))
            bn.bias.copy_(torch.randn(n, generator=gen) * 0.5)
        for norm in (m for m in net.modules() if isinstance(m, TensorNorm)):
            norm.weight.fill_(0.75)
            norm.bias.fill_(0.1)
            norm.running_mean.fill_(2.0)
            norm.running_var.fill_(30.0)


def _fc(name: str):
    import torch

    from brevitas_examples.bnn_pynq.models.FC import FC

    net_name, bits = name.split("_")
    weight_bits, act_bits = _BITS[bits]
    torch.manual_seed(len(name))
    net = FC(num_classes=10, weight_bit_width=weight_bits, act_bit_width=act_bits,
             in_bit_width=1 if act_bits == 1 else 2, in_channels=1, out_features=FC_SIZES[net_name])
    _randomize_norms(net, 1, lambda gen: net(torch.rand(256, 1, 28, 28, generator=gen)))
    return net, torch.rand(1, 1, 28, 28)



def _unsw():
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import Uint8ActPerTensorFloat
    from brevitas.quant.binary import SignedBinaryActPerTensorConst

    torch.manual_seed(7)
    layers = [qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=2, return_quant_tensor=True)]
    widths = (600, 64, 64, 64, 1)
    for index in range(len(widths) - 1):
        layers.append(qnn.QuantLinear(widths[index], widths[index + 1], bias=True, weight_bit_width=2))
        if index < len(widths) - 2:
            layers += [torch.nn.BatchNorm1d(widths[index + 1]), torch.nn.Dropout(0.5),
                       qnn.QuantReLU(bit_width=2, return_quant_tensor=True)]
    layers.append(qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=False))
    mlp = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for module in mlp:
            if isinstance(module, qnn.QuantLinear):
                module.weight.uniform_(-1.0, 1.0)
                module.bias.normal_(0.0, 1.0)

    class ForExport(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = mlp

        def forward(self, x):
            return self.mlp((x + torch.tensor([1.0])) / 2.0)

    net = ForExport()

    def bipolar(gen):
        return torch.where(torch.rand(256, 600, generator=gen) < 0.5, -1.0, 1.0)

    _randomize_norms(net, 2, lambda gen: net(bipolar(gen)))
    return net, bipolar(torch.Generator().manual_seed(0))[:1]


def _pattern(name: str):
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloat

    torch.manual_seed(3)
    relu = lambda: qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=3, return_quant_tensor=True)  # noqa: E731
    ident = lambda: qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=2, return_quant_tensor=True)  # noqa: E731
    middle = {"requant_relu_identity": [torch.nn.BatchNorm1d(24), relu(), ident()],
              "bn_after_act_quant": [relu(), torch.nn.BatchNorm1d(24), ident()],
              "bn_after_act_matmul": [relu(), torch.nn.BatchNorm1d(24)]}[name]
    layers = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4, return_quant_tensor=True),
              qnn.QuantLinear(16, 24, bias=False, weight_bit_width=2), *middle,
              qnn.QuantLinear(24, 5, bias=False, weight_bit_width=2)]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for module in net:
            if isinstance(module, qnn.QuantLinear):
                module.weight.uniform_(-1.0, 1.0)
    _randomize_norms(net, 3, lambda gen: net(torch.randn(256, 16, generator=gen) * 2))
    return net, torch.randn(1, 16)


def make_network(name: str):
    """(torch module in eval mode, example input) for ``name``."""
    if name not in NAMES:
        raise KeyError(f"unknown FINN example {name!r}; known: {', '.join(NAMES)}")
    if name in PATTERNS:
        return _pattern(name)
    return _unsw() if name == "unsw_mlp_w2a2" else _fc(name)


def build(name: str, directory: str | Path) -> Path:
    """Export FINN example ``name`` as QONNX (dynamo=False, as FINN's notebooks do) into ``directory``."""
    from brevitas.export import export_qonnx

    net, example = make_network(name)
    path = Path(directory) / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(net, example, export_path=str(path), dynamo=False)
    return path
