"""qmlp: compile quantized MLPs (QONNX) into verified streaming dataflow hardware for Zynq boards."""

__version__ = "0.1.0"
__all__ = ["__version__"]
