#!/usr/bin/env python3
"""Export a checkpoint to ONNX (+ its GPU program) and prove parity: `python tools/export_onnx.py --help`.

The library is nss_train.export.onnx (its docstring describes the graph and the checks)."""
import sys

from nss_train.export.onnx import main

if __name__ == "__main__":
    sys.exit(main())
