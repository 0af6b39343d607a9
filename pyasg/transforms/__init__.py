"""Graph -> Graph transforms (grad, infer_shapes, simplify) and jit_to_backend."""

from pyasg.transforms import vjp_control  # noqa: F401  (the control-flow ops' VJP rules)
