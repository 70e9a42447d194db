"""merlib: lightweight-ViT micro-expression recognition, reproduced.

Liu, Li, Yi, Hu, Zhang & Liu (2022), "Lightweight ViT Model for Micro-Expression
Recognition Enhanced by Transfer Learning", Front. Neurorobot. 16:922761.
"""
__version__ = "0.1.0"
