"""The live viewer: `launch` starts it in its own process (see `pyasg.viewer.process`)."""

from pyasg.viewer.process import ViewerHandle, launch

__all__ = ["ViewerHandle", "launch"]
