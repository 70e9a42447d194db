"""Studies beyond the paper, on simulated data whose truth is known.

- :mod:`merlib.studies.amplitude`: accuracy against the true expression amplitude
  (SynthME roots that differ only in ``amplitude_scale``), and dlib's landmark jitter.
- :mod:`merlib.studies.robustness`: the test subject's apex frames degraded before
  pre-processing (:mod:`merlib.faces.perturb`), each fold's model unchanged.
"""
