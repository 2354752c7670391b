"""Frontend: a QONNX/QCDQ ONNX file -> the Dataflow IR, as an explicit list of passes.

``import_model(path)`` = ``load_model`` (read + single input/output) then ``lower`` (the passes in
``PASSES`` below, then ``qmlp.ir.verify``). Every rejection is a ModelError/UnsupportedOpError
naming the file, node or field and what to do."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..ir import Dataflow, IRError, verify
from ..errors import ModelError, QmlpError
from .chain import SUPPORTED_OPS, Chain, check_supported_ops, extract_chain
from .constant_fold import fold_constants
from .load import load_model
from .lower import lower_chain
from .preprocess import absorb_input_preprocessing
from .requant import merge_requantizers

__all__ = ["import_model", "load_model", "lower", "to_chain", "PASSES", "SUPPORTED_OPS"]

# The pipeline, top to bottom; each is a small function with its own test.
PASSES = (
    ("fold_constants", fold_constants),  # ModelProto -> ModelProto
    ("check_supported_ops", check_supported_ops),  # ModelProto -> ModelProto
    ("extract_chain", extract_chain),  # ModelProto -> Chain
    ("absorb_input_preprocessing", absorb_input_preprocessing),  # Chain -> Chain
    ("merge_requantizers", merge_requantizers),  # Chain -> Chain
    ("lower_chain", lower_chain),  # Chain -> Dataflow
)


def to_chain(model: onnx.ModelProto, name: str | None = None) -> Chain:
    """The passes up to the Chain lower_chain reads (the float reference reads it too)."""
    checked = check_supported_ops(fold_constants(model))
    return merge_requantizers(absorb_input_preprocessing(extract_chain(checked, name)))


def lower(model: onnx.ModelProto, name: str | None = None) -> Dataflow:
    """Run the lowering passes on a loaded model and verify the result."""
    try:
        df = lower_chain(to_chain(model, name))
    except (ValueError, TypeError, IndexError, KeyError, RecursionError, OverflowError) as error:
        if isinstance(error, QmlpError):
            raise
        # A graph the passes did not expect (mismatched shapes, missing inputs, a cycle): the
        # model is untrusted input, so say so in one line instead of a traceback.
        reason = str(error).splitlines()[0][:200] if str(error) else ""
        raise ModelError(f"model '{name or model.graph.name}': the graph could not be lowered ({type(error).__name__}: "
                         f"{reason}); it is malformed or uses a pattern qmlp does not know: check it with "
                         "onnx.checker.check_model and re-export it") from error
    try:
        verify(df)
    except IRError as error:  # a lowering bug, but say which model triggered it
        raise ModelError(f"model '{df.name}': lowering produced an invalid IR ({error}); please report this") from error
    return df


def import_model(path: str | Path) -> Dataflow:
    """Load, check and lower an ONNX file; the IR is named after the file."""
    return lower(load_model(path), name=Path(path).stem)
