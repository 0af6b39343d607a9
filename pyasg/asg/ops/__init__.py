"""The primitive op set, by category: one frozen dataclass per op, each with its shape rule.

Importing this package imports every category, so `OPS` (every op by name) is complete
by construction. Everything that is not an op here is a composite over these ops in
`pyasg.array` (softmax = max, sub, exp, sum, div).

>>> Sum(axes=(1,), keepdims=False).infer(TensorType((2, 3)))
f32[2]
"""

from pyasg.asg.ops.attention import *  # noqa: F403  (Attention, AttentionLSE, AttentionGrad*)
from pyasg.asg.ops.base import (
    FUSION_ROLES,
    OPS,
    Constant,
    Input,
    Op,
    broadcast_shapes,
    normalize_axis,
)
from pyasg.asg.ops.control import (
    Cond,
    Control,
    Remat,
    Scan,
    WhileLoop,
    input_dependencies,
)
from pyasg.asg.ops.conv import (
    Conv2d,
    Conv2dBackwardInput,
    Conv2dBackwardWeight,
    MaxPool2dIndices,
    conv_output_size,
)
from pyasg.asg.ops.custom import (
    CustomCall,
)
from pyasg.asg.ops.elementwise import (
    Abs,
    Add,
    Binary,
    Cast,
    Compare,
    Cos,
    Div,
    Equal,
    Erf,
    Exp,
    Expm1,
    FloorDiv,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Mod,
    Mul,
    Neg,
    NotEqual,
    Pow,
    Sign,
    Sin,
    Sqrt,
    StopGradient,
    Sub,
    Tanh,
    Unary,
    Where,
)
from pyasg.asg.ops.fused import (
    Fused,
)
from pyasg.asg.ops.indexing import (
    Gather,
    ScatterAdd,
)
from pyasg.asg.ops.linalg import (
    MatMul,
)
from pyasg.asg.ops.random import (
    RandomBits,
)
from pyasg.asg.ops.reduction import (
    ArgMax,
    Max,
    Sum,
)
from pyasg.asg.ops.shape import (
    BroadcastTo,
    Concatenate,
    Pad,
    Reshape,
    Slice,
    Transpose,
    resolve_reshape,
)
from pyasg.asg.types import TensorType

__all__ = [
    "Abs",
    "Add",
    "ArgMax",
    "Binary",
    "BroadcastTo",
    "Cast",
    "Compare",
    "Concatenate",
    "Cond",
    "Control",
    "Constant",
    "Conv2d",
    "Conv2dBackwardInput",
    "Conv2dBackwardWeight",
    "Cos",
    "CustomCall",
    "Div",
    "Equal",
    "Erf",
    "Exp",
    "Expm1",
    "FUSION_ROLES",
    "FloorDiv",
    "Fused",
    "Gather",
    "Greater",
    "GreaterEqual",
    "Input",
    "Less",
    "LessEqual",
    "Log",
    "Log1p",
    "MatMul",
    "Max",
    "MaxPool2dIndices",
    "Maximum",
    "Minimum",
    "Mod",
    "Mul",
    "Neg",
    "NotEqual",
    "OPS",
    "Op",
    "Pad",
    "Pow",
    "RandomBits",
    "Remat",
    "Reshape",
    "Scan",
    "ScatterAdd",
    "Sign",
    "Sin",
    "Slice",
    "Sqrt",
    "StopGradient",
    "Sub",
    "Sum",
    "Tanh",
    "TensorType",
    "Transpose",
    "Unary",
    "WhileLoop",
    "Where",
    "broadcast_shapes",
    "conv_output_size",
    "input_dependencies",
    "normalize_axis",
    "resolve_reshape",
]
