"""A working Godot >= 4.3 for the project: from the host, or from a cached Debian-sid chroot.

Order of preference:
  1. `$GODOT` (must be Godot 4.3+, else a clear error),
  2. `godot` on PATH when it is 4.3+,
  3. a Debian-unstable chroot under ${XDG_CACHE_HOME:-~/.cache}/nss_godot/ with godot, Mesa's
     lavapipe (CPU Vulkan) and Xvfb (docs/godot.md). Built once by
     `ensure()`, reused by every later run (also by CI's fresh clones).

Inside the chroot the repository root and /tmp are bind-mounted at the SAME paths, so every
path given to Godot means the same file on both sides (no translation). Other absolute paths
passed to `run(..., paths=[...])` are bind-mounted the same way on demand.

Usage from Python:
    g = find_godot()                 # raises GodotError with a one-line reason
    r = g.run(["--headless", "--path", P, "--import"], timeout=300)
    r = g.run(["--path", P, "--quit-after", "5"], display=True, timeout=120)
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MIN_VERSION = (4, 3)
SUITE = "sid"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["godot", "mesa-vulkan-drivers", "xvfb", "xauth", "libgl1-mesa-dri", "ca-certificates"]
# Bump when the chroot recipe changes, so old caches are rebuilt.
RECIPE = 1
XVFB_SCREEN = "1280x720x24"
# sid's Release file is often past its Valid-Until date
APT_OPTS = ["-o", "Acquire::Check-Valid-Until=false", "-o", "APT::Get::Assume-Yes=true", "-q"]


class GodotError(RuntimeError):
    """Godot cannot be found or set up; the message says why and what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "nss_godot"


def chroot_dir() -> Path:
    return cache_dir() / "sid-root"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """'4.6.3.stable.debian' -> (4, 6, 3); None when it is not a Godot version line."""
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?\.\w+", line)
        if m:
            return int(m[1]), int(m[2]), int(m[3] or 0)
    return None


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    output: str  # stdout + stderr, interleaved
    seconds: float
    timed_out: bool = False

    def errors(self) -> list[str]:
        """Lines that mean a GDScript or engine error, even when Godot exits 0."""
        return [ln for ln in self.output.splitlines() if ERROR_PATTERN.search(ln)]


ERROR_PATTERN = re.compile(r"SCRIPT ERROR|Parse Error|Compile Error|Failed to load script|Invalid call")


def _run_bounded(argv: list[str], timeout: float, env: dict | None = None, cwd: str | None = None,
                 echo: bool = False, fail_fast: bool = False, done_marker: str | None = None) -> RunResult:
    """Run argv in its own process group; on timeout kill the whole group (xvfb-run spawns Xvfb).

    done_marker: a line containing it means the work is done: a Godot that has not exited 10 s later (some
    scenes hang on quit under lavapipe) is ended and the run counts as exit 0.
    fail_fast: a GDScript error line ends the run a few seconds later (Godot often hangs after
    a script fails to load instead of exiting).
    """
    import selectors

    t0 = time.monotonic()
    deadline = t0 + timeout
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                         start_new_session=True, text=True, errors="replace")
    assert p.stdout is not None
    chunks: list[str] = []
    timed_out = False
    failed_at: float | None = None
    done_at: float | None = None

    def kill(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, sig)

    try:
        sel = selectors.DefaultSelector()
        sel.register(p.stdout, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if failed_at is not None and now - failed_at > 3.0:
                break
            if done_at is not None and now - done_at > 10.0:
                break
            if not sel.select(timeout=min(deadline - now, 0.5)):
                if p.poll() is not None:  # exited; a child (Xvfb) may still hold the pipe open
                    break
                continue
            line = p.stdout.readline()
            if not line:
                break
            chunks.append(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            if fail_fast and failed_at is None and ERROR_PATTERN.search(line):
                failed_at = time.monotonic()
            if done_marker and done_at is None and done_marker in line:
                done_at = time.monotonic()
        hung_after_done = done_at is not None and not timed_out and failed_at is None and p.poll() is None
        if timed_out or failed_at is not None or hung_after_done:
            kill(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill(signal.SIGKILL)
        os.set_blocking(p.stdout.fileno(), False)
        with contextlib.suppress(OSError, TypeError):
            chunks.append(p.stdout.read() or "")
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            kill(signal.SIGKILL)
            p.wait()
    except BaseException:
        kill(signal.SIGKILL)
        p.wait()
        raise
    kill(signal.SIGTERM)  # Xvfb may outlive a crashed godot inside xvfb-run: reap the group
    rc = 124 if timed_out else (0 if hung_after_done else p.returncode)
    return RunResult(argv, rc, "".join(chunks), time.monotonic() - t0, timed_out)


@dataclass
class Godot:
    """A runnable Godot. `kind` is 'host' or 'chroot'."""

    kind: str
    binary: str  # path on the host, or inside the chroot
    version: tuple[int, int, int]
    root: Path | None = None  # chroot root
    extra_binds: list[str] = field(default_factory=list)

    @property
    def version_string(self) -> str:
        return ".".join(map(str, self.version))

    def describe(self) -> str:
        where = f"chroot {self.root}" if self.kind == "chroot" else "host"
        return f"Godot {self.version_string} ({where}: {self.binary})"

    def argv(self, args: list[str], display: bool = False) -> list[str]:
        """The command line that runs Godot with `args` (display=True: a real renderer under Xvfb)."""
        # no sound card on CI machines: skip the ALSA probing and its error lines
        base = [self.binary] if "--audio-driver" in args else [self.binary, "--audio-driver", "Dummy"]
        g = [*base, *args]
        if display:
            if "--rendering-driver" not in args and "--headless" not in args:
                g = [*base, "--rendering-driver", "vulkan", *args]
            if self.kind == "chroot" or not os.environ.get("DISPLAY"):
                if self.kind == "host" and not shutil.which("xvfb-run"):
                    raise GodotError("a rendering run needs a display: set DISPLAY or install xvfb (xvfb-run)")
                g = ["xvfb-run", "-a", "-s", f"-screen 0 {XVFB_SCREEN}", *g]
        if self.kind == "chroot":
            assert self.root is not None
            env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8",
                   "XDG_RUNTIME_DIR=/tmp/nss_godot_runtime"]
            g = ["chroot", str(self.root), *env, *g]
        return g

    def run(self, args: list[str], timeout: float, display: bool = False, paths: list[str] | None = None,
            echo: bool = False, fail_fast: bool = True, done_marker: str | None = None) -> RunResult:
        """Run Godot, bounded by `timeout` seconds. `paths`: host paths Godot must see (chroot binds them)."""
        if self.kind == "chroot":
            assert self.root is not None
            with lock():
                mount_all(self.root, [*(paths or []), *self.extra_binds])
            Path("/tmp/nss_godot_runtime").mkdir(mode=0o700, exist_ok=True)
        env = dict(os.environ)
        if self.kind == "host":
            env.setdefault("XDG_RUNTIME_DIR", "/tmp/nss_godot_runtime")
            Path(env["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
        return _run_bounded(self.argv(args, display), timeout, env=env, echo=echo, fail_fast=fail_fast,
                            done_marker=done_marker)

    # convenience wrappers used by the CLI and tests
    def import_project(self, project: str | Path, timeout: float = 600, echo: bool = False) -> RunResult:
        p = str(Path(project).resolve())
        return self.run(["--headless", "--path", p, "--import"], timeout, paths=[p], echo=echo)

    def run_script(self, project: str | Path, script: str, user_args: list[str] | None = None,
                   timeout: float = 300, display: bool = False, echo: bool = False) -> RunResult:
        p = str(Path(project).resolve())
        args = ([] if display else ["--headless"]) + ["--path", p, "-s", script]
        if user_args:
            args += ["--", *user_args]
        return self.run(args, timeout, display=display, paths=[p], echo=echo)

    def render(self, project: str | Path, args: list[str] | None = None, timeout: float = 300,
               echo: bool = False) -> RunResult:
        p = str(Path(project).resolve())
        return self.run(["--path", p, *(args or [])], timeout, display=True, paths=[p], echo=echo)


# --- finding Godot -----------------------------------------------------------

def _probe(binary: str) -> tuple[int, int, int] | None:
    try:
        r = _run_bounded([binary, "--headless", "--version"], timeout=60)
    except OSError:
        return None
    return parse_version(r.output)


def host_godot() -> Godot | None:
    """$GODOT or `godot` on PATH when it is 4.3+. A $GODOT that is not usable is an error."""
    env = os.environ.get("GODOT")
    if env:
        path = shutil.which(env) or env
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise GodotError(f"$GODOT={env!r} is not an executable file; point it at a Godot 4.3+ binary or unset it")
        v = _probe(path)
        if v is None or v[:2] < MIN_VERSION:
            raise GodotError(f"$GODOT={env!r} reports version {v}; expected Godot >= "
                             f"{MIN_VERSION[0]}.{MIN_VERSION[1]} (unset GODOT to use the project's chroot)")
        return Godot("host", path, v)
    path = shutil.which("godot") or shutil.which("godot4")
    if path:
        v = _probe(path)
        if v is not None and v[:2] >= MIN_VERSION:
            return Godot("host", path, v)
    return None


def _stamp_path() -> Path:
    return cache_dir() / "ready.json"


def chroot_godot() -> Godot | None:
    """The cached chroot's Godot when its set-up completed (stamp present and current)."""
    st = _stamp_path()
    try:
        d = json.loads(st.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    root = chroot_dir()
    if d.get("recipe") != RECIPE or not (root / "usr/bin/godot").exists():
        return None
    return Godot("chroot", "/usr/bin/godot", tuple(d["version"]), root=root)


def find_godot() -> Godot:
    """A usable Godot, or GodotError saying how to get one (`python tools/godot_env.py ensure`)."""
    g = host_godot() or chroot_godot()
    if g is None:
        raise GodotError("no Godot >= 4.3 found: set $GODOT, put godot 4.3+ on PATH, or run "
                         "`python tools/godot_env.py ensure` (needs root + network once)")
    return g


# --- the chroot ----------------------------------------------------------------

@contextlib.contextmanager
def lock():
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _mounts() -> set[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # field 5 is the mount point, octal-escaped
            mp = line.split()[4]
            out.add(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), mp))
    return out


def mounts_under(root: Path) -> list[str]:
    r = str(root.resolve())
    return sorted((m for m in _mounts() if m == r or m.startswith(r + "/")), key=len, reverse=True)


def _sh(argv: list[str], what: str, timeout: float = 900, echo: bool = True) -> RunResult:
    r = _run_bounded(argv, timeout, echo=echo)
    if r.returncode != 0:
        tail = "\n".join(r.output.strip().splitlines()[-15:])
        raise GodotError(f"{what} failed (exit {r.returncode}{', timed out' if r.timed_out else ''}): "
                         f"{' '.join(argv)}\n{tail}")
    return r


def _same_dir(host: str, target: str) -> bool:
    """Is `target` (inside the chroot) the very directory `host` is, not an older one of the same name?"""
    try:
        return os.path.samefile(host, target)
    except OSError:
        return False


def _bind(root: Path, host_path: str, mounted: set[str]) -> None:
    host = os.path.realpath(host_path)
    target = str(root) + host
    if target in mounted:
        if _same_dir(host, target):
            return
        # a stale bind: made for an earlier directory of this path that has since been deleted or replaced
        # (CI's clones come and go at one path); it shows the old files, so take it down and bind again
        _sh(["umount", "-l", target], f"unmount the stale bind {target}", timeout=30, echo=False)
        mounted.discard(target)
    # already visible through a parent bind (e.g. /tmp/x under /tmp)? /proc and /dev binds do not count:
    # a plain bind of /dev does not carry /dev/pts or /dev/shm with it.
    special = (str(root / "proc"), str(root / "dev"))
    for m in mounted:
        if (target.startswith(m + "/") and m.startswith(str(root) + "/") and not m.startswith(special)
                and _same_dir(host, target)):
            return
    os.makedirs(target, exist_ok=True)
    _sh(["mount", "--bind", host, target], f"bind-mount {host}", timeout=30, echo=False)
    mounted.add(target)


def mount_all(root: Path, extra: list[str] | None = None) -> None:
    """Mount proc, /dev, /dev/pts, /tmp and the repository (and `extra` dirs) inside the chroot; idempotent."""
    root = root.resolve()
    mounted = _mounts()
    if str(root / "proc") not in mounted:
        _sh(["mount", "-t", "proc", "proc", str(root / "proc")], "mount proc", timeout=30, echo=False)
        mounted.add(str(root / "proc"))
    for d in ["/dev", "/dev/pts", "/dev/shm", "/tmp", str(REPO_ROOT)]:
        if os.path.isdir(d):
            _bind(root, d, mounted)
    for p in extra or []:
        p = os.path.abspath(p)
        d = p if os.path.isdir(p) else os.path.dirname(p)
        if os.path.isdir(d) and d != "/":
            _bind(root, d, mounted)
    # name resolution for apt inside the chroot
    with contextlib.suppress(OSError):
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")


def unmount_all(root: Path) -> None:
    for m in mounts_under(root):
        r = _run_bounded(["umount", m], 30)
        if r.returncode != 0:
            _run_bounded(["umount", "-l", m], 30)


def _remove_root(root: Path) -> None:
    unmount_all(root)
    left = mounts_under(root)
    if left:
        raise GodotError(f"cannot rebuild {root}: still mounted: {left}; unmount them and re-run")
    # --one-file-system: never descend into anything still mounted
    _sh(["rm", "-rf", "--one-file-system", str(root)], f"remove half-built chroot {root}", echo=False)


def ensure(verbose: bool = True) -> Godot:
    """Return a usable Godot; build the chroot when the host has none. Idempotent and lock-protected."""
    g = host_godot()
    if g is not None:
        return g
    with lock():
        g = chroot_godot()
        if g is not None:
            mount_all(g.root)
            return g
        if sys.platform != "linux":
            raise GodotError("no Godot >= 4.3 found; install Godot 4.3+ and set $GODOT (the chroot fallback is Linux-only)")
        if os.geteuid() != 0:
            raise GodotError("no Godot >= 4.3 found, and building the Debian chroot needs root: "
                             "re-run `python tools/godot_env.py ensure` as root, or install Godot 4.3+ and set $GODOT")
        if not shutil.which("debootstrap"):
            if shutil.which("apt-get"):
                log = print if verbose else (lambda *a: None)
                log("godot_env: installing debootstrap on the host (apt-get)")
                _sh(["apt-get", "update", "-q"], "apt-get update", echo=verbose)
                _sh(["apt-get", "install", "-y", "-q", "debootstrap"], "apt-get install debootstrap", echo=verbose)
            if not shutil.which("debootstrap"):
                raise GodotError("no Godot >= 4.3 and no debootstrap (and no apt-get to install it): "
                                 "install debootstrap or Godot 4.3+ (set $GODOT)")
        root = chroot_dir()
        stage_file = root / ".nss_stage"
        stage = stage_file.read_text().strip() if stage_file.exists() else ""
        if root.exists() and stage not in ("base", "packages"):
            print(f"godot_env: {root} is half-built (no stage stamp); removing it and starting over")
            _remove_root(root)
        if not stage_file.exists():
            print(f"godot_env: debootstrap {SUITE} into {root} (about a minute)")
            root.parent.mkdir(parents=True, exist_ok=True)
            _sh(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR], "debootstrap", timeout=1800,
                echo=verbose)
            stage_file.write_text("base\n")
        mount_all(root)
        print("godot_env: installing godot, lavapipe (mesa-vulkan-drivers), xvfb in the chroot")
        _sh(["chroot", str(root), "apt-get", *APT_OPTS, "update"], "apt-get update in the chroot", echo=verbose)
        env_noninteractive = ["env", "DEBIAN_FRONTEND=noninteractive"]
        _sh(["chroot", str(root), *env_noninteractive, "apt-get", *APT_OPTS, "install", "--no-install-recommends",
             *PACKAGES], "apt-get install in the chroot", timeout=1800, echo=verbose)
        stage_file.write_text("packages\n")
        v = parse_version(_sh(["chroot", str(root), "/usr/bin/godot", "--headless", "--version"],
                              "godot --version in the chroot", timeout=120, echo=False).output)
        if v is None or v[:2] < MIN_VERSION:
            raise GodotError(f"the chroot's godot reports version {v}; expected >= {MIN_VERSION}")
        from nss_runtime.atomic import atomic_write_bytes
        atomic_write_bytes(_stamp_path(), json.dumps({"recipe": RECIPE, "version": list(v), "root": str(root),
                                                      "packages": PACKAGES}).encode())
        return Godot("chroot", "/usr/bin/godot", v, root=root)


def info() -> dict:
    d: dict = {"cache": str(cache_dir()), "repo": str(REPO_ROOT)}
    try:
        g = find_godot()
        d.update(kind=g.kind, binary=g.binary, version=g.version_string, root=str(g.root) if g.root else None)
        if g.root:
            d["mounts"] = mounts_under(g.root)
    except GodotError as e:
        d["error"] = str(e)
    return d
