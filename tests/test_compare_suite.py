"""tools/compare_suite.py: the summary of the yardstick runs (the Godot runs themselves: test_compare_upscalers)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nss_train.eval import in_engine_suite as S

ROOT = Path(__file__).resolve().parents[1]


def _report(d: Path, psnr: dict, flip: dict, flicker: dict, aligned=True):
    d.mkdir(parents=True)
    meth = {m: {"psnr": psnr[m], "flip": flip[m], "flicker": flicker[m], "aligned": aligned, "per_frame": {}}
            for m in psnr}
    (d / "report.json").write_text(json.dumps({"methods": meth, "frame_ids": list(range(24)), "model": "m.onnx"}))


def test_summary_means_margins_and_missing_runs(tmp_path):
    _report(tmp_path / "demo_ts1", {"neural": 30.0, "fsr2": 29.0, "bilinear": 28.0},
            {"neural": 0.05, "fsr2": 0.06, "bilinear": 0.07}, {"neural": 0.01, "fsr2": 0.02, "bilinear": 0.02})
    _report(tmp_path / "demo_ts4", {"neural": 25.0, "fsr2": 25.4, "bilinear": 24.0},
            {"neural": 0.09, "fsr2": 0.08, "bilinear": 0.1}, {"neural": 0.03, "fsr2": 0.02, "bilinear": 0.04},
            aligned=False)
    s = S.summarise(tmp_path, ["demo_ts1", "demo_ts4", "textures_and_text_ts1"])
    assert s["missing"] == ["textures_and_text_ts1"] and s["runs_averaged"] == 2
    c = s["checks"]
    assert c["psnr_over_fsr2"]["value"] == pytest.approx(0.3) and not c["psnr_over_fsr2"]["met"]
    assert c["psnr_over_fsr2"]["margin"] == pytest.approx(-0.2)
    assert c["psnr_over_bilinear"]["value"] == pytest.approx(1.5) and c["psnr_over_bilinear"]["met"]
    assert c["flip_below_fsr2"]["runs_better"] == 1 and c["flip_below_fsr2"]["met"] is False  # 0.07 vs 0.07
    fk = c["flicker_no_worse_than_fsr2"]
    assert (fk["runs_ok"], fk["runs"], fk["met"]) == (1, 2, True)  # mean 0.02 vs FSR2's 0.02
    assert fk["value"] == pytest.approx(0.02) and fk["fsr2"] == pytest.approx(0.02)
    assert "demo_ts4:neural" in s["unaligned"]
    md = S.markdown(s)
    assert "MISSED by 0.20 dB" in md and "| demo_ts1 | 24 | 30.00 / 0.050" in md and "NOT aligned" in md


def test_cli_rebuilds_the_summary_and_says_what_is_missing(tmp_path):
    _report(tmp_path / "demo_ts1", {"neural": 30.0, "fsr2": 29.0, "bilinear": 28.0},
            {"neural": 0.05, "fsr2": 0.06, "bilinear": 0.07}, {"neural": 0.01, "fsr2": 0.02, "bilinear": 0.02})
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "compare_suite.py"), "--out", str(tmp_path),
                        "--summary-only", "--scenes", "demo"], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr  # demo_ts4 has no report
    assert "Not run / no report: demo_ts4" in r.stdout
    assert json.loads((tmp_path / "summary.json").read_text())["missing"] == ["demo_ts4"]
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "compare_suite.py"), "--out", str(tmp_path),
                        "--summary-only", "--scenes", "demo,nowhere"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and "nowhere" in r.stderr, r.stderr
