"""Tables, figures and the provenance stamp every figure and table carries."""
from merlib.provenance import Provenance, code_version, data_fingerprint, is_simulated

__all__ = ["Provenance", "code_version", "data_fingerprint", "is_simulated"]
