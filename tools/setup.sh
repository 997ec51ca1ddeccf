#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine (or any machine with Python 3.11):
#   bash tools/setup.sh           # .venv with nss_train (+ bpy for rendering, pytest)
#   bash tools/setup.sh --godot   # also make sure a Godot 4 is available (tools/godot_env.py)
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_godot=0
for a in "$@"; do
  case "$a" in
    --godot) want_godot=1 ;;
    *) echo "setup.sh: unknown option '$a' (known: --godot)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-}
if [[ -z "$PY" ]]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then PY=$c; break; fi
  done
fi
if [[ -z "$PY" ]]; then
  echo "setup.sh: need Python 3.11 (Blender's bpy 5.0 module exists for 3.11 only); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
pip_args=(--disable-pip-version-check -q)
# A local wheel directory (as on the project's build machines) holds the CPU torch wheel.
[[ -d /opt/wheels ]] && pip_args+=(--find-links /opt/wheels)
stamp=.venv/.nss_installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install "${pip_args[@]}" --upgrade pip
  .venv/bin/python -m pip install "${pip_args[@]}" -e ".[render,dev]"
  touch "$stamp"
fi
.venv/bin/python -c 'import torch, bpy, OpenEXR, onnxruntime; print(f"nss_train env ok: torch {torch.__version__}, bpy {bpy.app.version_string}, onnxruntime {onnxruntime.__version__}")'

if [[ $want_godot == 1 ]]; then
  .venv/bin/python tools/godot_env.py ensure
fi
