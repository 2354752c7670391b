"""qmlp: compile quantized MLPs (QONNX) into verified streaming dataflow hardware for Zynq boards.

The Python API (docs/api.md): ``qmlp.load``, ``qmlp.compile``, ``qmlp.Model``, ``qmlp.Build``,
``qmlp.parse_rate``. They are imported on first use, so ``import qmlp`` stays light (the board
agent runs with numpy only)."""

__version__ = "0.1.0"
__all__ = ["__version__", "load", "compile", "Model", "Build", "parse_rate", "QmlpError"]

_API = {"load": "api", "compile": "api", "Model": "api", "parse_rate": "api", "Build": "build", "QmlpError": "errors"}


def __getattr__(name: str):  # noqa: ANN202 - PEP 562 lazy exports
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"qmlp.{_API[name]}"), name)
    raise AttributeError(f"module 'qmlp' has no attribute {name!r}")
