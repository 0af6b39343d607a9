"""The Dear PyGui viewer (planned: see the issue "The live viewer")."""
