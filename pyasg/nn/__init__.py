"""Layers (`Module` subclasses) and initialisers; see `pyasg.nn.module` for the protocol."""

from pyasg.nn import init
from pyasg.nn.attention import MultiHeadAttention
from pyasg.nn.basic import (
    ELU,
    GELU,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sequential,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    SpatialDropout,
    Tanh,
)
from pyasg.nn.conv import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv2d,
    ConvTranspose2d,
    GlobalAvgPool2d,
    MaxPool2d,
)
from pyasg.nn.layers import Dropout, LayerNorm, Linear
from pyasg.nn.module import ROLES, Module, ModuleError, name_key, register_roles
from pyasg.nn.norm import BatchNorm, BatchNorm1d, BatchNorm2d
from pyasg.nn.positional import (
    ALiBi,
    LearnedPositionalEmbedding,
    RoPE,
    SinusoidalPositionalEncoding,
)
from pyasg.nn.recurrent import GRU, RNN
from pyasg.nn.transformer import FeedForward, TransformerBlock

__all__ = [
    "ALiBi", "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm", "BatchNorm1d", "BatchNorm2d",
    "Conv2d", "ConvTranspose2d", "Dropout", "Dropout2d", "ELU", "Embedding", "FeedForward",
    "Flatten", "GELU", "GRU", "RNN", "GlobalAvgPool2d", "Identity", "LayerNorm", "LeakyReLU",
    "LearnedPositionalEmbedding", "Linear", "LogSoftmax", "MaxPool2d", "Module", "ModuleError",
    "MultiHeadAttention", "ROLES", "ReLU", "RoPE", "Sequential", "SiLU", "Sigmoid",
    "SinusoidalPositionalEncoding", "Softmax", "Softplus", "SpatialDropout", "Tanh",
    "TransformerBlock", "init", "name_key", "register_roles",
]
