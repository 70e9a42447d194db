"""merlib: lightweight-ViT micro-expression recognition, reproduced.

Liu, Li, Yi, Hu, Zhang & Liu (2022), "Lightweight ViT Model for Micro-Expression
Recognition Enhanced by Transfer Learning", Front. Neurorobot. 16:922761.
"""
__version__ = "0.1.0"


def _motion_apex(frames, onset, offset):
    # Imported on first use: reading sheets should not load OpenCV and dlib.
    from merlib.faces.apex import clip_apex

    return clip_apex(frames, onset, offset)


def _wire() -> None:
    """The composition root: stages of later steps that earlier steps take as arguments.

    The readers (:mod:`merlib.data`) estimate an unusable apex cell from the clip's motion,
    which takes the pre-processing step's face detector (:mod:`merlib.faces.apex`); data
    must not import faces, so the estimator is registered here.
    """
    from merlib.data.apex import register_apex_estimator

    register_apex_estimator("motion", _motion_apex)


_wire()
