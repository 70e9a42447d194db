"""Map the owners' emotion names onto the three classes of the paper and MEGC2019.

negative = anger, contempt, disgust, fear, sadness, repression; positive = happiness;
surprise = surprise; anything else (others, neutral, ...) has no label. For CASME II the
MEGC2019 negatives are disgust and repression only: its fear and sadness clips are few
and were left out of the composite, so they get no label here either.
"""
from __future__ import annotations

_GENERAL: dict[str, str] = {
    "anger": "negative",
    "angry": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sadness": "negative",
    "sad": "negative",
    "repression": "negative",
    "happiness": "positive",
    "happy": "positive",
    "surprise": "surprise",
    # SMIC writes the class itself in its folder names.
    "negative": "negative",
    "positive": "positive",
}

#: Per-dataset overrides of the general mapping.
_OVERRIDES: dict[str, dict[str, str | None]] = {
    "casme2": {"fear": None, "sadness": None},
}


def emotion_to_label(emotion: str | None, dataset: str | None = None) -> str | None:
    """The 3-class label of an emotion name, or None when it has none.

    Parameters
    ----------
    emotion : str or None
        The emotion as the owners wrote it, any case (``Happiness``, ``disgust``).
    dataset : str, optional
        Dataset key (``casme2`` ...); selects that dataset's exceptions.

    Returns
    -------
    str or None
        ``"negative"``, ``"positive"``, ``"surprise"`` or None.
    """
    if emotion is None or not isinstance(emotion, str):
        return None
    key = emotion.strip().lower()
    overrides = _OVERRIDES.get(dataset or "", {})
    if key in overrides:
        return overrides[key]
    return _GENERAL.get(key)
