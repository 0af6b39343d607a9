"""The live viewer: `launch` starts it in its own process (see `pyasg.viewer.process`);
the live values it asks for are computed in the training process by `pyasg.viewer.watch`."""

from pyasg.viewer.process import ViewerHandle, launch

__all__ = ["ViewerHandle", "launch"]
