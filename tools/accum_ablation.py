#!/usr/bin/env python3
"""Ablations of the `accum` preset on held-out sequences: `python tools/accum_ablation.py --help`.
The code is nss_train.eval.ablation."""
import sys

from nss_train.eval.ablation import main

if __name__ == "__main__":
    sys.exit(main())
