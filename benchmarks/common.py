"""What every benchmark script shares: the machine header, warm-up-then-median timing (interleaved,
so that a machine whose speed drifts slows every contender alike), whole-process timing with peak
memory, aligned tables, and the fitted scaling exponent.

Benchmarks use archdsl only through its public surface (``archdsl.api`` and the ``archdsl`` CLI),
so that they keep measuring the same thing while the internals change.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The `archdsl` command: what its console script does, run by this interpreter (so that no pyenv or
# venv shim is timed, and the archdsl on this interpreter's path is the one measured).
CLI = [sys.executable, "-c", "import sys; from archdsl.cli import run; sys.argv[0] = 'archdsl'; run()"]


# ---------------------------------------------------------------------------------------------
# The header: which machine, which versions, how loaded


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _archdsl_version() -> str:
    import archdsl

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{archdsl.__version__}" + (f" ({commit})" if commit else "")


def header(title: str, command: Sequence[str], packages: Sequence[str] = ()) -> str:
    """The lines every benchmark prints first: date, machine, load, versions, the command."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    versions = [f"python {platform.python_version()}", f"archdsl {_archdsl_version()}"]
    versions += [f"{p} {v}" for p in packages if (v := _version(p)) is not None]
    missing = [p for p in packages if _version(p) is None]
    lines = [
        f"# {title}",
        f"date     {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine  {_cpu_model()}, {cores} core(s) usable of {os.cpu_count()}, {_memory_total()}, "
        f"{platform.system()} {platform.release()}",
        f"load     {load} (1, 5, 15 min; above the core count means other work shares the CPUs)",
        "processes measured as fresh processes run with Python's bytecode cache on (PYTHONDONTWRITEBYTECODE unset)",
        f"versions {', '.join(versions)}" + (f"; not installed: {', '.join(missing)}" if missing else ""),
        f"command  {shlex.join(command)}",
    ]
    return "\n".join(lines)


def invocation(script: str, argv: Sequence[str] | None) -> list[str]:
    """How `script` (a file in benchmarks/) was run: `argv` when main() was called with it, else
    this process's own arguments."""
    return ["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)]


# ---------------------------------------------------------------------------------------------
# In-process timing


def interleaved(contenders: Mapping[str, Callable[[], object]], repeat: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each contender: `warmup` uncounted rounds, then `repeat` rounds, each
    round calling every contender once in turn (A B C A B C …)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + repeat):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if round_ >= warmup:
                times[name].append(elapsed)
    return times


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan


# ---------------------------------------------------------------------------------------------
# Whole-process timing


@dataclass(frozen=True)
class ProcessRun:
    wall_s: float
    cpu_s: float  # user + system, the process and its children
    peak_rss_bytes: int  # the process's own high-water mark (ru_maxrss)
    returncode: int
    stdout: bytes
    stderr: bytes


# A small process starts each measured command and reports the kernel's accounting of it (wait4):
# a command forked straight from this one would inherit this process's memory high-water mark, so
# its peak RSS would read as this benchmark's (hundreds of MB once torch is loaded).
_LAUNCHER = """
import json, os, sys, time
out, err, result, *cmd = sys.argv[1:]
stdout, stderr = os.open(out, os.O_WRONLY), os.open(err, os.O_WRONLY)
start = time.perf_counter()
pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[
    (os.POSIX_SPAWN_DUP2, stdout, 1), (os.POSIX_SPAWN_DUP2, stderr, 2),
    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(result, "w") as f:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss": usage.ru_maxrss,
               "rc": os.waitstatus_to_exitcode(status)}, f)
"""


def measured_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured process: this one's (or `env`), but with Python's bytecode
    cache on, as an installed package has it. Under PYTHONDONTWRITEBYTECODE every run would compile
    archdsl's modules from source again, half of a short command's time."""
    out = dict(os.environ if env is None else env)
    out.pop("PYTHONDONTWRITEBYTECODE", None)
    return out


def run_process(cmd: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ProcessRun:
    """Run `cmd` to completion, its output to temporary files (a 67 MB JSON must not block a pipe);
    wall time, CPU time and peak RSS are the kernel's figures for that process alone. The
    environment is `measured_env(env)`."""
    with tempfile.TemporaryDirectory(prefix="archdsl-bench-") as tmp:
        out, err, result = (Path(tmp) / name for name in ("stdout", "stderr", "result.json"))
        out.touch()
        err.touch()
        subprocess.run([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(out), str(err), str(result), *cmd],
                       check=True, env=measured_env(env), cwd=cwd, stdin=subprocess.DEVNULL)
        data = json.loads(result.read_text())
        peak = data["maxrss"] * (1 if sys.platform == "darwin" else 1024)
        return ProcessRun(data["wall"], data["cpu"], peak, data["rc"], out.read_bytes(), err.read_bytes())


def checked(run: ProcessRun, cmd: Sequence[str]) -> ProcessRun:
    if run.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {run.returncode}:\n{run.stderr.decode(errors='replace')[-3000:]}")
    return run


def whole_process(commands: Mapping[str, Sequence[str]], repeat: int, warmup: int = 1,
                  env: Mapping[str, str] | None = None) -> dict[str, list[ProcessRun]]:
    """Each command as a fresh process, interleaved A B A B … after `warmup` uncounted rounds (which
    also fill the OS file cache and the compiled-grammar cache)."""
    runs: dict[str, list[ProcessRun]] = {name: [] for name in commands}
    for round_ in range(warmup + repeat):
        for name, cmd in commands.items():
            run = checked(run_process(cmd, env), cmd)
            if round_ >= warmup:
                runs[name].append(run)
    return runs


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of the round-by-round ratios a[i]/b[i]: robust to drift between rounds."""
    return median([x / y for x, y in zip(a, b, strict=True) if y > 0])


# ---------------------------------------------------------------------------------------------
# Formatting


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    if seconds >= 10:
        return f"{seconds:,.1f} s"
    return f"{seconds * 1e3:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def mb(n_bytes: float) -> str:
    return "—" if math.isnan(n_bytes) else f"{n_bytes / 1e6:,.1f} MB"


def ratio(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:,.1f}×" if x >= 10 else f"{x:,.2f}×"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] | None = None) -> str:
    """Rows aligned under their headers; numeric-looking columns right-aligned unless told."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    align = list(right) if right is not None else [i > 0 for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        padded = (v.rjust(w) if a else v.ljust(w) for v, w, a in zip(values, widths, align, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["─" * w for w in widths]), *(line(r) for r in cells)])


def fit_exponent(sizes: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(value) against log(size): value ∝ size**slope."""
    pairs = [(math.log(n), math.log(v)) for n, v in zip(sizes, values, strict=True) if n > 0 and v > 0]
    if len(pairs) < 2:
        return math.nan
    mx = statistics.fmean(x for x, _ in pairs)
    my = statistics.fmean(y for _, y in pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    return sum((x - mx) * (y - my) for x, y in pairs) / sxx if sxx else math.nan


class Disagreement(AssertionError):
    """Two tools report different numbers for the same network: the comparison would be unfair."""
