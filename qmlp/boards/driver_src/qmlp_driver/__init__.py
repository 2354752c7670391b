"""qmlp accelerator driver for PYNQ boards (numpy + pynq; pynq is imported only when an overlay is
loaded, so everything else also runs on a host).

    from qmlp_driver import Accelerator
    acc = Accelerator()              # loads ../bitstream/qmlp.bit (+ .hwh) and ../dataflow.json
    y = acc.predict(x)               # float in, float out, exactly as the compiled model
"""

from .accelerator import Accelerator, DriverError, REGISTERS, load_config

__all__ = ["Accelerator", "DriverError", "REGISTERS", "load_config"]
