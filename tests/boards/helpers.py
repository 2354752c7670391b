"""Helpers shared by the boards tests: small folded Dataflows (stream format set directly, so the
test chooses the widths), the identifying part of a packaged IP-XACT file, the bitstream slots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from qmlp.datatypes import INT, UINT
from qmlp.ir import Folding, StreamFormat, verify
from qmlp.testing import random_dataflow

HERE = Path(__file__).parent
# The identifying part of the IP-XACT file qmlp.hwgen.ipxact writes (the boards step reads the VLNV).
COMPONENT_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<spirit:component xmlns:spirit="http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009">
  <spirit:vendor>qmlp.dev</spirit:vendor>
  <spirit:library>qmlp</spirit:library>
  <spirit:name>qmlp_top</spirit:name>
  <spirit:version>1.0</spirit:version>
</spirit:component>
"""


def folded(seed: int = 0, *, widths=(12, 9, 7, 3), simd: int = 2, pe: int = 1, argmax: bool = False,
           input_dtype=INT(8), act_dtype=UINT(2), name: str = "tiny"):
    """A random IR with the first layer's SIMD and the last layer's PE set (others 1)."""
    df = random_dataflow(seed, widths=widths, input_dtype=input_dtype, act_dtype=act_dtype, name=name)
    layers = [replace(layer, folding=Folding()) for layer in df.layers]
    # Zero-pad a dimension PE/SIMD does not divide, as the fold pass may.
    layers[0] = replace(layers[0], folding=Folding(simd=simd, pad_in=-layers[0].in_features % simd))
    last = layers[-1].folding
    layers[-1] = replace(layers[-1], folding=replace(last, pe=pe, pad_out=-layers[-1].out_features % pe))
    df = replace(df, layers=tuple(layers), argmax=argmax,
                 stream=StreamFormat(in_elems_per_beat=simd, out_elems_per_beat=1 if argmax else pe), clock_mhz=200.0)
    verify(df)
    return df


def fill_bitstream_slots(root: Path) -> None:
    """What 'make bitstream' leaves in OUT/deploy/bitstream."""
    (root / "bitstream" / "qmlp.bit").write_bytes(b"bitstream")
    (root / "bitstream" / "qmlp.hwh").write_text("<hwh/>")
