#!/usr/bin/env python3
"""Godot 4 for this project: the command line over nss_godot.toolchain (see docs/godot.md).

  python tools/godot_env.py ensure                 # find Godot 4.3+, or build the cached Debian chroot
  python tools/godot_env.py info                   # what is used, where (JSON)
  python tools/godot_env.py import P               # editor import of project P (headless)
  python tools/godot_env.py script P S [args...]   # headless: godot --path P -s S -- args
  python tools/godot_env.py render P [args...]     # real rendering under Xvfb + lavapipe: godot --path P args
  python tools/godot_env.py umount                 # unmount the chroot's bind mounts (before deleting the cache)
Options before the command: --timeout SECONDS (default 600).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from nss_godot.toolchain import GodotError, chroot_dir, ensure, find_godot, info, lock, mounts_under, unmount_all


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    timeout = 600.0
    if argv[:1] == ["--timeout"] and len(argv) > 1:
        timeout = float(argv[1])
        argv = argv[2:]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    try:
        if cmd == "ensure":
            g = ensure()
            print(f"godot_env: ok: {g.describe()}")
            return 0
        if cmd == "umount":
            with lock():
                unmount_all(chroot_dir())
            left = mounts_under(chroot_dir())
            print(f"godot_env: {'still mounted: ' + ', '.join(left) if left else 'no mounts left under ' + str(chroot_dir())}")
            return 1 if left else 0
        if cmd == "info":
            print(json.dumps(info(), indent=1))
            return 0
        need = {"import": 1, "script": 2, "render": 1}
        if cmd not in need:
            print(f"godot_env: unknown command {cmd!r}; expected ensure, info, import, script, render or umount", file=sys.stderr)
            return 2
        if len(rest) < need[cmd]:
            print(f"godot_env: '{cmd}' needs {need[cmd]} argument(s); see --help", file=sys.stderr)
            return 2
        project = Path(rest[0])
        if not (project / "project.godot").is_file():
            print(f"godot_env: {project}: no project.godot there; expected a Godot project directory", file=sys.stderr)
            return 2
        g = find_godot()
        if cmd == "import":
            r = g.import_project(project, timeout=timeout, echo=True)
        elif cmd == "script":
            r = g.run_script(project, rest[1], rest[2:], timeout=timeout, echo=True)
        else:
            r = g.render(project, rest[1:], timeout=timeout, echo=True)
        if r.timed_out:
            print(f"godot_env: timed out after {timeout:.0f} s", file=sys.stderr)
        return r.returncode
    except GodotError as e:
        print(f"godot_env: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
