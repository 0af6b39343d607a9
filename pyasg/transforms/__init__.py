"""Graph -> Graph transforms (vjp, jvp, batching, custom-derivative inlining, infer_shapes,
simplify, fuse, dtypes)."""

from pyasg.transforms import vjp_control  # noqa: F401  (the control-flow ops' VJP rules)
