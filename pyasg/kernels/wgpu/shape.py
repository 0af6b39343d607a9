"""WGSL kernels: shape (being written)."""
