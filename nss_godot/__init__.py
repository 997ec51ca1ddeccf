"""nss_godot: a working Godot 4 for this project, from the host or from a cached Debian-sid chroot.

    toolchain  find_godot(), ensure(), Godot.run/import_project/render (the library)
    cli        `python tools/godot_env.py ensure|info|import|script|render|umount` (the command line)
"""
