"""Wiring edits of the accum preset and the tests that catch them (docs/accum.md, "What the tests catch").

    python tools/accum_mutations.py                     # every edit
    python tools/accum_mutations.py "flip motion sign"  # one

Each edit is a string replacement in a COPY of nss_train/models/accum.py; a pytest plugin (written next to the copy)
loads that copy as `nss_train.models.accum`, so the working tree never holds a broken file. Prints, per edit,
the tests of tests/test_accum.py that fail (K=... selects tests; default: all but the slow export/server/fit ones).
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = 'import importlib.util, os, sys\nimport nss_train.models  # the real package; only its accum module is replaced\n_p = os.environ["NSS_ACCUM_MUT_FILE"]\n_spec = importlib.util.spec_from_file_location("nss_train.models.accum", _p)\n_mod = importlib.util.module_from_spec(_spec)\nsys.modules["nss_train.models.accum"] = _mod\n_spec.loader.exec_module(_mod)\nnss_train.models.accum = _mod\n'
TMP = Path(tempfile.mkdtemp(prefix="accum_mut_"))
(TMP / "mutplug.py").write_text(PLUGIN)
MUTS = {
 "flip motion sign": ("        m = dilate_motion(motion, dn) if cfg.dilate else motion\n", "        m = -(dilate_motion(motion, dn) if cfg.dilate else motion)\n"),
 "drop the warp (zero flow)": ("        hw, valid = warp_history(hist, m, s)\n", "        hw, valid = warp_history(hist, torch.zeros_like(m), s)\n"),
 "warp by low-res motion (no x s)": ("    m = F.interpolate(m, scale_factor=s, mode=\"nearest\") * s  # [B,2,H,W] output px\n", "    m = F.interpolate(m, scale_factor=s, mode=\"nearest\")\n"),
 "reverse the jitter": ("        jitter = jitter.reshape(B, 2).to(y.dtype)\n", "        jitter = -jitter.reshape(B, 2).to(y.dtype)\n"),
 "ignore the jitter": ("        jitter = jitter.reshape(B, 2).to(y.dtype)\n", "        jitter = 0 * jitter.reshape(B, 2).to(y.dtype)\n"),
 "drop the dilation": ("        m = dilate_motion(motion, dn) if cfg.dilate else motion\n", "        m = motion\n"),
 "never reset": ("        keep = (1.0 - reset.reshape(B, 1, 1, 1).to(y.dtype))  # 0 on a cut / first frame\n", "        keep = torch.ones_like(reset.reshape(B, 1, 1, 1).to(y.dtype))\n"),
 "history off": ("        if not cfg.use_history:\n            valid = torch.zeros_like(valid)\n", "        valid = torch.zeros_like(valid)\n"),
 "drop the rectification": ("        h_rect = torch.minimum(torch.maximum(h_rgb, lo), hi)\n", "        h_rect = h_rgb\n"),
 "drop the signed kernel": ("            kern = kern + sharp.reshape(B, Q, 9, h, w)\n", "            kern = kern\n"),
 "drop the running-mean prior": ("        a = torch.sigmoid(alpha_logit + prior) * valid_f  # [B,Q,h,w]\n", "        a = torch.sigmoid(alpha_logit + 2.2) * valid_f\n"),
}
sel = sys.argv[1:] or list(MUTS)
for name in sel:
    a, b = MUTS[name]
    p = TMP / "accum_mut.py"
    shutil.copy(ROOT / "nss_train" / "models" / "accum.py", p)
    t = p.read_text(); assert t.count(a) == 1, name
    p.write_text(t.replace(a, b))
    env = dict(os.environ, PYTHONPATH=str(TMP), NSS_ACCUM_MUT_FILE=str(p))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "mutplug", "tests/test_accum.py",
                        "-k", os.environ.get("K", "not onnx and not server and not fit"), "-x" if os.environ.get("X") else "-q"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    failed = [l.split(" ")[1] for l in r.stdout.splitlines() if l.startswith("FAILED")]
    print(f"{name:35s} -> rc {r.returncode}; failed: {', '.join(f.split('::')[1] for f in failed) or 'NONE'}", flush=True)
