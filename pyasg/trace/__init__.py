"""Python function -> Graph: tracers, the trace context, and pytrees."""
