"""What a request costs: process CPU milliseconds, or instructions counted by callgrind.

Used by bench/profile_flows.py. CPU time is the least mean of batches of five (other
processes' load only ever adds to it). Under callgrind (`run_under_callgrind`), the same
calls count the instructions the requests executed instead, which the machine's load
cannot change: `cost` turns instrumentation on around the requests only, through a
three-line C library built with the system's gcc and valgrind/callgrind.h.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LIBRARY = "RAPPORT_CALLGRIND_LIBRARY"
DUMPS = "RAPPORT_CALLGRIND_DUMPS"
SOURCE = """
#include <valgrind/callgrind.h>
void measure_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void measure_stop(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""

_library = ctypes.CDLL(os.environ[LIBRARY]) if os.environ.get(LIBRARY) else None


def unit() -> str:
    """Name what `cost` returns."""
    return "M instr" if _library is not None else "ms CPU"


def cost(step: Callable[[int], object], first: int, count: int) -> float:
    """Return what one of `step(first)` ... `step(first + count - 1)` costs, on average."""
    if _library is not None:
        _library.measure_start()
        for n in range(first, first + count):
            step(n)
        _library.measure_stop()
        return _last_total() / count / 1e6
    batches = []
    for start in range(first, first + count, 5):
        started = time.process_time()
        for n in range(start, min(start + 5, first + count)):
            step(n)
        batches.append(
            (time.process_time() - started) * 1000 / (min(start + 5, first + count) - start)
        )
    return min(batches)


def _last_total() -> int:
    dumps = Path(os.environ[DUMPS]).glob("callgrind.out.*")
    latest = max(dumps, key=lambda path: int(path.name.rsplit(".", 1)[1]))
    for line in latest.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {latest}")


def run_under_callgrind(
    arguments: list[str], scratch: str, **run: object
) -> subprocess.CompletedProcess:
    """Run `python arguments...` under callgrind, instrumented only inside `cost`."""
    library = Path(scratch) / "measure.so"
    if not library.exists():
        (Path(scratch) / "measure.c").write_text(SOURCE)
        subprocess.run(  # noqa: S603
            [
                "gcc",
                "-shared",
                "-fPIC",
                "-O2",
                "-o",
                str(library),
                str(Path(scratch) / "measure.c"),
            ],  # noqa: S607
            check=True,
        )
    dumps = Path(scratch) / f"dumps{len(list(Path(scratch).glob('dumps*')))}"
    dumps.mkdir()
    env = {**os.environ, **run.pop("env", {}), LIBRARY: str(library), DUMPS: str(dumps)}  # type: ignore[dict-item]
    return subprocess.run(  # noqa: S603
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={dumps}/callgrind.out",
            "--quiet",
            sys.executable,
            *arguments,
        ],
        env=env,
        check=True,
        **run,  # type: ignore[arg-type]
    )
