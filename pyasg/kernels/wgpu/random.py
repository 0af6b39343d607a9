"""WGSL kernels: random (being written)."""
