"""The resize worker role: the consumer loop and the pure resize engine."""

import os

# One task, one core: numpy's BLAS would otherwise reserve a thread pool (and its address space) per core
# in every resize child; the workers already run tasks side by side.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
