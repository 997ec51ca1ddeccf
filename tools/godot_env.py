#!/usr/bin/env python3
"""Godot 4 for this project: `python tools/godot_env.py ensure|info|import|script|render|umount` (nss_godot.cli)."""
import sys

from nss_godot.cli import main

if __name__ == "__main__":
    sys.exit(main())
