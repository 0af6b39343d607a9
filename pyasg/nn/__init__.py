"""Layers (`Module` subclasses) and initialisers; see `pyasg.nn.module` for the protocol."""

from pyasg.nn.module import ROLES, Module, register_roles

__all__ = ["ROLES", "Module", "register_roles"]
