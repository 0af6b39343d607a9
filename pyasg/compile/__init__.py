"""The compile layer: what a backend is (`protocol`), liveness over a schedule
(`liveness`), the backends by name (`registry`), the pipeline from a traced graph to an
executable (`pipeline`) and the per-signature cache behind `pyasg.jit` (`cache`).

`protocol` and `liveness` import only `pyasg.asg`: the kernels that implement a
backend and the transforms that read a backend's fusion options sit above them, and
`registry`, `pipeline` and `cache` sit above the kernels. This file imports nothing,
so importing `pyasg.compile.protocol` never pulls in the pipeline.
"""
