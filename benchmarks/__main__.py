"""`python -m benchmarks`: the CPU benchmark (see benchmarks/run.py for what it measures).

The thread counts of OpenBLAS/MKL/OpenMP (numpy, torch) and XLA (JAX) are read once,
when those libraries load, so they are set here, before anything imports numpy.
`--threads N` changes them (default 2).
"""

import argparse
import os
import sys

_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=2)
THREADS = max(1, _pre.parse_known_args(sys.argv[1:])[0].threads)

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
# XLA's CPU client sizes its intra-op (Eigen) pool from this flag
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                           f"{'true' if THREADS > 1 else 'false'} "
                           f"intra_op_parallelism_threads={THREADS}").strip()

from benchmarks.run import main  # noqa: E402 - after the thread settings, on purpose

if __name__ == "__main__":
    main(threads=THREADS)
