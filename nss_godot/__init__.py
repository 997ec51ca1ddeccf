"""nss_godot: a working Godot 4 for this project, from the host or from a cached Debian-sid chroot.

    toolchain  find_godot(), ensure(), Godot.run/import_project/render (the library)
    cli        `python tools/godot_env.py ensure|info|import|script|render|umount` (the command line)
    asset_zip  the Asset Library zip of addons/neural_ss/ (`python tools/build_asset_zip.py`)
"""
