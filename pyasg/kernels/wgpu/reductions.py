"""WGSL kernels: reductions (being written)."""
