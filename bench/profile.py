"""py-spy profiles: `record()` starts py-spy on processes of a scenario (`bench.run
--profile KEY`); `python -m bench.profile` summarises the collapsed stacks it wrote
(raw/profile-*.txt): the functions with the most samples, by own time and by inclusive time.

    python -m bench.profile bench/results/raw/profile-list-*.txt [--top 25] [--grep text]
"""

from __future__ import annotations

import argparse
import subprocess
from collections import Counter
from pathlib import Path

from bench.servers import VENV_BIN


def record(key: str, pids: list[int], seconds: int, directory: Path) -> list[subprocess.Popen]:
    """py-spy recording each of `pids` for `seconds`; collapsed stacks go to
    `directory`/profile-<key>-<pid>.txt. Wait for the returned processes (or send them
    SIGINT: py-spy writes its output then)."""
    procs = []
    for pid in pids:
        out = directory / f"profile-{key}-{pid}.txt"
        argv = [str(VENV_BIN / "py-spy"), "record", "-p", str(pid), "-r", "200", "-f", "raw"]
        argv += ["-d", str(seconds), "--nonblocking", "-o", str(out)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def load(paths: list[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        with open(path) as fh:
            for line in fh:
                frames, _, count = line.rstrip("\n").rpartition(" ")
                if frames and count.isdigit():
                    stacks.append((frames.split(";"), int(count)))
    return stacks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    stacks = load(args.paths)
    total = sum(count for _, count in stacks) or 1
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples")
    print("own time:")
    for frame, count in own.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("inclusive time:")
    for frame, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
