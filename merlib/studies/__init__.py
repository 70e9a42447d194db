"""Studies beyond the paper, on simulated data whose truth is known.

- :mod:`merlib.studies.apex`: the apex finder (:mod:`merlib.faces.apex`) against each
  SynthME clip's true apex.
- :mod:`merlib.studies.amplitude`: accuracy against the true expression amplitude
  (SynthME roots that differ only in ``amplitude_scale``), and dlib's landmark jitter.
- :mod:`merlib.studies.robustness`: the test subject's apex frames degraded before
  pre-processing (:mod:`merlib.faces.perturb`), each fold's model unchanged.
"""
