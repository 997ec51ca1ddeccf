#!/usr/bin/env python3
"""tools/compare_upscalers.py on the demo and the evaluation levels, then one summary: `python tools/compare_suite.py --help`. The code is nss_train.eval.in_engine_suite."""
import sys

from nss_train.eval.in_engine_suite import main

if __name__ == "__main__":
    sys.exit(main())
