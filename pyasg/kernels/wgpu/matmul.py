"""WGSL kernels: matmul (being written)."""
