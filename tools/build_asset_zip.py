#!/usr/bin/env python3
"""Build the Godot Asset Library zip of addons/neural_ss/: `python tools/build_asset_zip.py --out dist/neural_ss.zip`. The code is nss_godot.asset_zip."""
import sys

from nss_godot.asset_zip import main

if __name__ == "__main__":
    sys.exit(main())
