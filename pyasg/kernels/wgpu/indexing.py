"""WGSL kernels: indexing (being written)."""
