"""The closed-loop load generator: Debian's `wrk`, one thread, its output parsed by
`bench.report.parse_wrk` and kept in bench/results/raw/."""

from __future__ import annotations

import shutil
import subprocess

from bench.context import BENCH, raw, say
from bench.report import parse_wrk


def ensure_wrk() -> str:
    """The path of `wrk`, installed from its Debian package when missing (needs root)."""
    path = shutil.which("wrk")
    if path:
        return path
    say("installing wrk (Debian package)")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    path = shutil.which("wrk")
    if not path:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed and could not be installed")
    return path


def wrk(
    port: int,
    path: str,
    *,
    seconds: int,
    connections: int,
    host: str = "",
    token: str = "",
    script: str = "",
    script_args: list[str] | None = None,
    tag: str,
) -> dict:
    """`wrk` on 127.0.0.1:`port``path`; returns `parse_wrk`'s figures. `script` is a Lua
    file of bench/ (rotate.lua, login.lua); the output goes to raw/wrk-<tag>.txt."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
    ]
    if host:
        argv += ["-H", f"Host: {host}"]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    if script:
        argv += ["-s", str(BENCH / script)]
    argv.append(f"http://127.0.0.1:{port}{path}")
    if script_args:
        argv += ["--", *script_args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    raw(f"wrk-{tag}.txt").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr.strip()}")
    return parse_wrk(out.stdout)
