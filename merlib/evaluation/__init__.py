"""Leave-one-subject-out evaluation, metrics on pooled predictions, grid search, intervals.

The protocol, search and variants names load on first use (they import torch and the
training modules).
"""
from importlib import import_module
from typing import Any

from merlib.evaluation.metrics import metrics_table, scores, uar_score, uf1_score
from merlib.evaluation.splits import inner_folds, loso_folds

_LAZY = {"LosoResult": "protocol", "evaluate_loso": "protocol", "SearchResult": "search",
         "grid_search": "search", "bootstrap_table": "bootstrap", "paired_table": "bootstrap",
         "STUDIES": "variants", "Study": "variants", "StudyRun": "variants", "get_study": "variants",
         "run_study": "variants", "chapter_profile": "variants", "score_predictions": "scoring",
         "paired_scores": "scoring", "read_predictions": "scoring", "compare_published": "scoring"}

__all__ = ["LosoResult", "STUDIES", "SearchResult", "Study", "StudyRun", "bootstrap_table", "chapter_profile",
           "compare_published", "evaluate_loso", "get_study", "grid_search", "inner_folds", "loso_folds",
           "metrics_table", "paired_scores", "paired_table", "read_predictions", "run_study", "score_predictions",
           "scores", "uar_score", "uf1_score"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"merlib.evaluation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'merlib.evaluation' has no attribute {name!r}")
