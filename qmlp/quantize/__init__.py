"""Training side of qmlp: Brevitas recipes (ternary 1.58-bit, int2, bipolar), the MLP builder,
offline datasets (synthetic/HCRL CAN bus, digits, MNIST-5k, UNSW-NB15), the training loop and
QONNX export. Needs torch and brevitas; the compiler core never imports this package."""

from __future__ import annotations

__all__ = ["ModelSpec", "build_mlp", "build_float_mlp", "RECIPES", "get_recipe", "TrainConfig", "train_model",
           "TrainOptions", "run_training", "export_model", "load_dataset", "WEIGHT_RECIPES", "ACT_BITS"]

# What can be trained, importable without torch (the CLI and `qmlp explore` check specs against it):
WEIGHT_RECIPES = ("bipolar", "ternary", "int2", "int3", "int4")  # the keys of recipes.RECIPES
ACT_BITS = (1, 2, 3, 4, 8)  # hidden activation widths recipes.act_quant supports


def __getattr__(name: str):
    # Lazy: importing qmlp.quantize must not pull in torch/brevitas until something is used.
    if name in ("ModelSpec", "build_mlp", "build_float_mlp"):
        from . import model
        return getattr(model, name)
    if name in ("RECIPES", "get_recipe"):
        from . import recipes
        return getattr(recipes, name)
    if name in ("TrainConfig", "train_model"):
        from . import training
        return getattr(training, name)
    if name in ("TrainOptions", "run_training"):
        from . import pipeline
        return getattr(pipeline, name)
    if name == "export_model":
        from .export import export_model
        return export_model
    if name == "load_dataset":
        from .datasets import load_dataset
        return load_dataset
    raise AttributeError(f"module 'qmlp.quantize' has no attribute {name!r}")
