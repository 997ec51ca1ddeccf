#!/usr/bin/env python3
"""Compare the addon's neural upscaler with Godot's own upscalers in the engine, on any scene: `python tools/compare_upscalers.py --help`. The code is nss_train.eval.in_engine."""
import sys

from nss_train.eval.in_engine import main

if __name__ == "__main__":
    sys.exit(main())
