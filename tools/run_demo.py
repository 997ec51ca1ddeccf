#!/usr/bin/env python3
"""Run the Godot demo end to end with the neural upscaler and show what it does: `python tools/run_demo.py --help`. The code is nss_train.eval.demo."""
import sys

from nss_train.eval.demo import main

if __name__ == "__main__":
    sys.exit(main())
