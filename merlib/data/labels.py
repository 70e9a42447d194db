"""Map the owners' emotion names onto the three classes of the paper and MEGC2019.

Two mappings, as in the paper:

- **Micro-expressions, and every index table** (:func:`emotion_to_label`): the MEGC2019
  mapping. negative = anger, contempt, disgust, fear, sadness, repression; positive =
  happiness; surprise = surprise; anything else (others, neutral, ...) has no label.
  For CASME II the MEGC2019 negatives are disgust and repression only: its fear and
  sadness clips are few and were left out of the composite, so they get no label here
  either.
- **The macro-expression transfer set** (:func:`macro_label`): the paper's dataset
  section maps negative = anger, disgust and sadness only (:data:`MACRO_NEGATIVE`), so
  fear and contempt images leave the macro set; ``negative=MEGC2019_NEGATIVE`` restores
  them.
"""
from __future__ import annotations

from collections.abc import Sequence

from merlib.errors import ConfigError

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


#: The paper's negative class of the macro transfer set (Liu et al. 2022, datasets section).
MACRO_NEGATIVE: tuple[str, ...] = ("anger", "disgust", "sadness")
#: The MEGC2019 negative emotions found in the macro datasets (fear and contempt restored).
MEGC2019_NEGATIVE: tuple[str, ...] = ("anger", "contempt", "disgust", "fear", "sadness")
#: Every emotion the negative class can be made of.
NEGATIVE_EMOTIONS: tuple[str, ...] = tuple(
    sorted(k for k, v in _GENERAL.items() if v == "negative" and k not in ("angry", "sad", "negative"))
)
_ALIASES: dict[str, str] = {"angry": "anger", "sad": "sadness", "happy": "happiness"}


def check_negative(negative: Sequence[str], name: str = "macro_negative") -> tuple[str, ...]:
    """``negative`` as a tuple of lower-case emotion names; ConfigError if one is unknown."""
    if isinstance(negative, str):
        raise ConfigError(f"{name}: expected a sequence of emotion names, got the string {negative!r}")
    names = tuple(str(n).strip().lower() for n in negative)
    unknown = [n for n in names if _ALIASES.get(n, n) not in NEGATIVE_EMOTIONS]
    if unknown or not names:
        raise ConfigError(
            f"{name}: expected a non-empty subset of {list(NEGATIVE_EMOTIONS)}, got {list(negative)}"
        )
    return tuple(_ALIASES.get(n, n) for n in names)


def macro_label(emotion: str | None, negative: Sequence[str] = MACRO_NEGATIVE) -> str | None:
    """The 3-class label of a macro-expression emotion under the paper's mapping.

    Parameters
    ----------
    emotion : str or None
        The emotion as the owners wrote it, any case (``Anger``, ``happy``, ``fear``).
    negative : sequence of str, default=MACRO_NEGATIVE
        Emotions that make the negative class: the paper's anger, disgust, sadness;
        :data:`MEGC2019_NEGATIVE` adds fear and contempt.

    Returns
    -------
    str or None
        ``"negative"``, ``"positive"``, ``"surprise"`` or None (left out).

    Examples
    --------
    >>> macro_label("Fear"), macro_label("Fear", MEGC2019_NEGATIVE), macro_label("happy")
    (None, 'negative', 'positive')
    """
    if emotion is None or not isinstance(emotion, str):
        return None
    key = emotion.strip().lower()
    key = _ALIASES.get(key, key)
    if key == "happiness":
        return "positive"
    if key == "surprise":
        return "surprise"
    return "negative" if key in check_negative(negative, "negative") else None
