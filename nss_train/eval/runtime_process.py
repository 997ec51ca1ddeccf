"""The addon's runtime server (`python -m nss_runtime.server`) as a subprocess on the host, as a game would start
it: used by the in-engine comparison (in_engine) and the demo (demo). ToolError: a one-line user-facing failure."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIR = REPO_ROOT / "addons" / "neural_ss" / "runtime"


class ToolError(RuntimeError):
    """One-line, user-facing reason a tool could not run."""


# --- the runtime on the host ----------------------------------------------------------------

class Runtime:
    """The addon's runtime server (`python -m nss_runtime.server`) as a subprocess with a fresh token;
    stop() ends it (also on errors). `port` and `token` are what a game needs (--nss-runtime-port/-token)."""

    def __init__(self, model: str, out: Path, threads: int | None = None, extra: tuple[str, ...] = ()):
        self.token = secrets.token_hex(16)
        out.mkdir(parents=True, exist_ok=True)
        self.ready = out / "runtime.ready.json"
        self.log_path = out / "runtime.log"
        self.ready.unlink(missing_ok=True)
        env = dict(os.environ, NSS_RUNTIME_TOKEN=self.token,
                   PYTHONPATH=str(RUNTIME_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "nss_runtime.server", "--model", model, "--ready-file", str(self.ready),
               "--parent-pid", str(os.getpid()), *extra]
        if threads:
            cmd += ["--threads", str(threads)]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                self.stop()
                raise ToolError(f"the runtime did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.05)
        info = json.loads(self.ready.read_text())
        if info.get("model_error"):
            self.stop()
            raise ToolError(info["model_error"])
        self.port = int(info["port"])

    def game_args(self) -> list[str]:
        """User arguments that make the addon use this runtime (the Python path, not the node's GPU runtime)
        through its bridge, upscaling every frame (lock-step)."""
        return ["--nss-runtime", "python", "--nss-runtime-port", str(self.port), "--nss-runtime-token", self.token,
                "--nss-lockstep"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
