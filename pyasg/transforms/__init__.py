"""Graph -> Graph transforms (grad, infer_shapes, simplify) and jit_to_backend."""
