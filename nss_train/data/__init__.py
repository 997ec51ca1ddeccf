"""Datasets over frame-contract sequences (datasets: windows, splits; `python -m nss_train.data check|info DIR`).
The contract's file I/O itself lives in the addon runtime (nss_runtime.frames), which the game side needs too."""
