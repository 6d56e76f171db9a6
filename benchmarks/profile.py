"""Sampling profile of the operator under test with py-spy (``--profile``; ``pip install py-spy``).

py-spy samples the process from outside (``--nonblocking``: without pausing it) and writes collapsed stacks
(``frame;frame;frame count`` per line). :func:`top_frames` turns them into the functions where the operator
spends its CPU: by self time (the frame on top of the stack) and inclusive time (anywhere on the stack, the
event loop's and threads' own frames left out).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Frames every stack goes through (event loop, threads): left out of the inclusive ranking.
_PLUMBING = ("(asyncio/", "(threading.py", "(concurrent/", "(selectors.py", "(main.py", "(assay-operator")
# "function (file.py:123)" -> "function (file.py)": one entry per function, not per line.
_LINE_NUMBER = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    frame = _LINE_NUMBER.sub(")", frame.strip())
    # Shorten site-packages paths to the package: "handle (kopf/_core/x.py)".
    return re.sub(r"\((?:.*/site-packages/|.*/operator/)", "(", frame)


def _file(function: str) -> str:
    """ "deepcopy (copy.py)" -> "copy.py": callers in the leaf's own module (recursion) are skipped."""
    return function.rpartition("(")[2]


def top_frames(lines: Iterable[str], limit: int = 15) -> dict[str, Any]:
    """Samples, and the top functions by self and inclusive share of the samples (percent)."""
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    # leaf function -> the frames that called it, outside the leaf's own module (deepcopy, JSON recursion)
    callers: dict[str, Counter[str]] = {}
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        # The first frame is py-spy's thread label ("process 123:\"python\"" or a thread name) when present.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_samples[frames[-1]] += count
        leaf_file = _file(frames[-1])
        outer = [f for f in frames[:-1] if _file(f) != leaf_file and not any(p in f for p in _PLUMBING)]
        callers.setdefault(frames[-1], Counter())[" < ".join(reversed(outer[-3:]))] += count
        for name in set(frames):
            if not any(p in name for p in _PLUMBING):
                inclusive[name] += count

    def share(counter: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": k, "percent": round(100 * v / total, 1)} for k, v in counter.most_common(limit)]

    top_callers = {
        leaf: [{"via": via, "percent": round(100 * n / total, 1)} for via, n in callers[leaf].most_common(3)]
        for leaf, _ in self_samples.most_common(5)
    }
    return {
        "samples": total,
        "self": share(self_samples),
        "inclusive": share(inclusive),
        "callers_of_top_self": top_callers,
    }


class Profiler:
    """py-spy record on a pid until :meth:`stop`."""

    def __init__(self, pid: int, output: Path) -> None:
        binary = shutil.which("py-spy") or str(
            Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"
        )
        if not Path(binary).exists():
            raise RuntimeError(
                "py-spy is not installed: .venv/bin/pip install -c constraints.txt -e '.[bench]'"
            )
        self.output = output
        self._log = output.with_suffix(".log").open("wb")
        self.proc = subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--nonblocking", "--rate", "50", "--format", "raw",
             "--output", str(output)],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def stop(self) -> dict[str, Any]:
        """Stop sampling (py-spy writes its output on SIGINT) and summarise."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if not self.output.exists():
            return {"error": f"py-spy wrote no profile; see {self.output.with_suffix('.log')}"}
        with self.output.open() as lines:
            summary = top_frames(lines)
        summary["raw"] = str(self.output)
        return summary
