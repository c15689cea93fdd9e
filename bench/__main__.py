"""`python -m bench [--quick] [name ...]`: every benchmark beside its reference, printed as ratios."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from bench.common import Row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and shorter windows")
    parser.add_argument(
        "names", nargs="*", help="benchmarks to run (default: all), e.g. sigv4 policy dataplane initiate jobs scale"
    )
    args = parser.parse_args(argv)
    here = Path(__file__).parent
    available = sorted(
        m.name[len("bench_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )
    chosen = args.names or available
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
    print(f"bench: {', '.join(chosen)} ({'quick' if args.quick else 'full'}); ratios are ours / reference")
    failed = False
    for name in chosen:
        module = importlib.import_module(f"bench.bench_{name}")
        t0 = time.perf_counter()
        rows: list[Row] = module.run(quick=args.quick)
        for row in rows:
            print(row.line())
        print(f"  ({name}: {time.perf_counter() - t0:.1f}s)")
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
