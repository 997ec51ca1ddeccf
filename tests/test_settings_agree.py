"""The addon's Project Settings table and the bridge's fallback defaults must not drift apart."""
import re
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "addons" / "neural_ss"


def _literal(v: str):
    v = v.strip()
    if v in ("true", "false"):
        return v == "true"
    if v.startswith('"'):
        return v.strip('"')
    return float(v) if "." in v else int(v)


def test_bridge_defaults_equal_the_registered_settings():
    settings = (ADDON / "neural_ss_settings.gd").read_text()
    table = dict((k, _literal(v)) for k, v in re.findall(r'^\t"(\w+)": \[([^,]+),', settings, re.M))
    bridge = (ADDON / "bridge" / "neural_ss_bridge.gd").read_text()
    block = bridge[bridge.index("const DEFAULTS := {"):]
    block = block[:block.index("}")]
    defaults = dict((k, _literal(v)) for k, v in re.findall(r'^\t"(\w+)": ([^,\n]+),', block, re.M))
    assert defaults, "no DEFAULTS found in the bridge"
    for k, v in defaults.items():
        assert k in table, f"bridge setting neural_ss/{k} is not registered in neural_ss_settings.gd"
        assert table[k] == v, f"neural_ss/{k}: settings default {table[k]!r} != bridge default {v!r}"
