"""WGSL kernels: conv (being written)."""
