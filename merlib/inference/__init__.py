"""Inference: ONNX export and runtime, self-contained model bundles, video sources and
prediction (``merlib fit``, ``merlib export``, ``merlib predict``; spotting is :mod:`merlib.faces.apex`)."""
