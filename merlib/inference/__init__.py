"""Inference: ONNX export and runtime, self-contained model bundles, video spotting and
prediction (``merlib fit``, ``merlib export``, ``merlib predict``)."""
