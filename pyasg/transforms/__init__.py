"""Graph -> Graph transforms (vjp, jvp, custom-derivative inlining, infer_shapes, simplify,
fuse, dtypes)."""
