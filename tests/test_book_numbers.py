"""No hand-typed results in the book's prose (``book/*.md``).

A result in a prose page goes stale with the next change of the generator or the code,
so every result comes from an executed notebook (MyST-NB ``glue``, or a table the
notebook shows) or from a dated record under ``bench/records/`` that a notebook renders.
This test fails on a *decimal result* in a page unless it is in :data:`ALLOWED`.

A decimal result is any of:

- a number with three or more decimals (``0.417``);
- a number with a unit of time or speed (``12.5 s``, ``122 s``, ``35.4 ms``, ``2.9x``,
  ``41 fps``);
- a percentage (``34 %``, ``97.4%``);
- a value with an uncertainty (``0.675 ± 0.044``) or an interval (``[0.43, 0.56]``);
- a signed decimal, a difference (``-0.097``, ``+0.057``);
- a decimal right after a score's name or after "about" (``UF1 0.48``, ``about 0.45``).

Settings (``dropout 0.5``, ``0.02-0.04 IOD``) are not results and are not matched unless
they take one of these forms. Not prose, and never matched: MyST roles and directives
(``{glue}`name```, ``{cite}`key```, ``{doc}`page```), URLs, DOIs and arXiv ids, version
numbers (``Python 3.11``, ``mathjax 3.2.2``), section, table and figure numbers, and
numbers given to a parameter in code (``--amplitude-scale 1.0``, ``dropout=0.5``);
anything else in code (an output line) is read like prose.

:data:`ALLOWED` names each exception: the page, the exact text around the number, and
where the number comes from: the paper (with the place in it), or the code setting the
prose states, which :func:`test_allowed_settings_match_the_code` reads back.
"""
from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
PAPER = "Liu et al. 2022, Front. Neurorobot. 16:922761"


@dataclass(frozen=True)
class Allowed:
    """A number a page may type: ``text`` (exact, containing it) on ``page``.

    ``source`` says where it comes from. A setting also names its home in the code
    (``code``: ``module:attribute`` or ``module:function(parameter)``) and its value there.
    """

    page: str
    text: str
    source: str
    code: str | None = None
    value: float | None = None


ALLOWED: tuple[Allowed, ...] = (
    # The paper's own claims, quoted as published.
    Allowed("intro.md", "accuracy of 84.27%", f"{PAPER}, abstract"),
    Allowed("intro.md", "35.4 ms", f"{PAPER}, abstract"),
    Allowed("method.md", "98.45% average macro recognition", f"{PAPER}, 'Transfer Learning of Macro-Expressions'"),
    Allowed("method.md", "84.27% micro-expression accuracy", f"{PAPER}, abstract"),
    Allowed("method.md", "35.4 ms per sample", f"{PAPER}, abstract"),
    Allowed("method.md", "lr 0.007", f"{PAPER}, 'Experimental Setup'"),
    Allowed("timing.md", "classified in 35.4 ms", f"{PAPER}, abstract; hardware in 'Experimental Setup'"),
    Allowed("timing.md", "35.4 ms was measured", f"{PAPER}, abstract"),
    # Settings the prose states: the code holds them, and the test reads them back.
    Allowed("beyond.md", "95% subject-bootstrap", "the intervals' coverage",
            "merlib.evaluation.bootstrap:bootstrap_scores(level)", 0.95),
    Allowed("results.md", "95% interval", "the intervals' coverage",
            "merlib.evaluation.bootstrap:bootstrap_scores(level)", 0.95),
    Allowed("beyond.md", "at most 2% of the apex's", "the still frames of the jitter measurement",
            "merlib.studies.amplitude:landmark_jitter(max_weight)", 0.02),
    Allowed("preprocessing.md", "24 % of the height", "the crop geometry",
            "merlib.faces.config:AlignConfig.eye_row", 0.24),
    Allowed("timing.md", "at least 99% of them", "the int8 graph's agreement threshold",
            "merlib.inference.export:MIN_AGREEMENT", 0.99),
    Allowed("timing.md", ">= 99% agreement", "the agreement threshold of --precision auto",
            "merlib.inference.export:MIN_AGREEMENT", 0.99),
    # Targets and thresholds with no single home in merlib.
    Allowed("data.md", "at least 90 %", "the apex estimator's goal; tests/studies/test_apex.py asserts it"),
    Allowed("data.md", "at 90 % or more", "the apex estimator's goal; tests/studies/test_apex.py asserts it"),
    Allowed("timing.md", "at least 30 frames per second", "the target notebooks/09_timing.ipynb checks"),
    Allowed("results.md", "The budget is 30 minutes", "the project's time budget for a fresh `make book`"),
    Allowed("beyond.md", "(UF1 of at least 0.90)", "the project's pipeline check at macro amplitude, a target"),
)

#: Spans that are not prose: replaced by blanks before matching (offsets and lines kept).
NOT_PROSE: tuple[re.Pattern, ...] = tuple(re.compile(p, re.M | re.S) for p in (
    r"^```\{glue[^}]*\}.*?^```",  # glue directives, whole block
    r"\{[\w:-]+\}`[^`]*`",  # MyST roles: {glue}`x`, {glue:text}`x:.3f`, {cite}`k`, {doc}`p`
    r"https?://\S+",
    r"\bdoi:\s*\S+|\b10\.\d{4,9}/\S+",
    r"\barXiv:\s*\d{4}\.\d{4,5}(?:v\d+)?|\b\d{4}\.\d{4,5}(?:v\d+)?\b",
    r"\b\d+(?:\.\d+){2,}\b",  # versions with two dots or more: 3.2.2
    r"(?:\b[Pp]ython|\bversion|(?<=[\w-])(?:==|>=|<=|~=|<)|@)\s*\d+(?:\.\d+)+",
    r"\b(?:[Ss]ections?|§|[Tt]ables?|[Ff]igures?|Fig\.|[Ee]q\.|[Ee]quation)\s*\d+(?:\.\d+)+",
))

#: In code, a number given to a parameter is a setting: ``--flag 1.0``, ``name=0.5``, ``name: 0.5``.
CODE_ARGUMENT = re.compile(r"(?:--?[A-Za-z][\w-]*[ =]|\b[A-Za-z_]\w*\s*[=:]\s*)[-+]?\d[\d.,]*")
#: Fenced blocks, and code spans (which may wrap, but not across a blank line).
CODE = re.compile(r"^```.*?^```|`(?:[^`\n]|\n(?![ \t]*\n))+`", re.M | re.S)

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_DEC = r"\d*\.\d+"
RESULT = re.compile("|".join((
    r"\d+\.\d{3,}",
    rf"{_NUM}(?:\s*[-–]\s*{_NUM})?\s*(?:ms|s|sec|seconds?|min|minutes?|h|hours?|fps|frames per second)\b",
    rf"{_NUM}x\b",
    rf"{_NUM}(?:\s*[-–]\s*{_NUM})?\s*%",
    rf"{_DEC}\s*±\s*{_DEC}",
    rf"\[\s*[-+−]?{_DEC}\s*,\s*[-+−]?{_DEC}\s*\]",
    rf"(?<![\w.])[-+−]{_DEC}",
    # (?!\w): "the 2.5th percentile" is not a score.
    rf"\b(?:UF1|UAR|F1|accuracy|recall|precision|scored?)\b[^.\n\d]{{0,20}}?{_DEC}(?!\w)",
    rf"\b(?:about|around|roughly|nearly|approximately)\s+[-+]?{_DEC}(?!\w)",
)))


@dataclass(frozen=True)
class Finding:
    page: str
    line: int
    text: str


def _blank(text: str, start: int, end: int) -> str:
    # Keep newlines so that line numbers and offsets stay those of the page.
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def prose_only(text: str) -> str:
    """``text`` with everything that is not prose blanked out (same length, same lines)."""
    for pattern in NOT_PROSE:
        for m in reversed(list(pattern.finditer(text))):
            text = _blank(text, m.start(), m.end())
    for code in reversed(list(CODE.finditer(text))):
        for arg in reversed(list(CODE_ARGUMENT.finditer(text, code.start(), code.end()))):
            text = _blank(text, arg.start(), arg.end())
    return text


def allowed_spans(raw: str, page: str, allowed: tuple[Allowed, ...] = ALLOWED) -> list[tuple[int, int]]:
    """Where ``raw`` (the text of ``page``) holds an allowed text."""
    # Any run of white space matches any other: a reflowed paragraph keeps its entries.
    return [(m.start(), m.end()) for a in allowed if a.page == page
            for m in re.finditer(r"\s+".join(map(re.escape, a.text.split())), raw)]


def unsourced_results(raw: str, page: str, allowed: tuple[Allowed, ...] = ALLOWED) -> list[Finding]:
    """Every decimal result in ``raw`` (the text of ``page``) that is not allowed."""
    spans = allowed_spans(raw, page, allowed)

    def excused(start: int, end: int) -> bool:
        return any(lo <= start and end <= hi for lo, hi in spans)

    # A match may hold words ("UF1 of at least 0.90"); its numbers are what must be excused.
    return [Finding(page, raw.count("\n", 0, m.start()) + 1, m.group(0).strip())
            for m in RESULT.finditer(prose_only(raw))
            if not all(excused(m.start() + n.start(), m.start() + n.end())
                       for n in re.finditer(r"\d+(?:[.,]\d+)*", m.group(0)))]


def pages() -> list[Path]:
    return sorted(BOOK.glob("*.md"))


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.name)
def test_no_hand_typed_results(path: Path) -> None:
    found = unsourced_results(path.read_text(), path.name)
    assert not found, "hand-typed results (glue them, render them from a bench/records record, or cite them):\n" + \
        "\n".join(f"  book/{f.page}:{f.line}: {f.text!r}" for f in found)


@pytest.mark.parametrize("path", pages(), ids=lambda p: p.name)
def test_no_three_decimal_number_outside_the_allow_list(path: Path) -> None:
    """The issue's check, as plain as ``grep -nE '[0-9]\\.[0-9]{3}' book/*.md``: no stripping."""
    raw = path.read_text()
    spans = allowed_spans(raw, path.name)
    stray = [m.group(0) for m in re.finditer(r"[0-9]\.[0-9]{3}", raw)
             if not any(lo <= m.start() and m.end() <= hi for lo, hi in spans)]
    assert not stray, f"book/{path.name}: {stray}"


def test_every_allowed_text_is_on_its_page_and_sourced() -> None:
    # A stale entry would let the number back in elsewhere unnoticed.
    for a in ALLOWED:
        assert allowed_spans((BOOK / a.page).read_text(), a.page, (a,)), \
            f"{a.page}: {a.text!r} is no longer there; drop it from ALLOWED"
        assert a.source.strip(), f"{a.page}: {a.text!r} has no source"


def _code_value(ref: str) -> float:
    module, _, attr = ref.partition(":")
    name, _, parameter = attr.partition("(")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return inspect.signature(obj).parameters[parameter.rstrip(")")].default if parameter else obj


@pytest.mark.parametrize("entry", [a for a in ALLOWED if a.code], ids=lambda a: f"{a.page}:{a.text}")
def test_allowed_settings_match_the_code(entry: Allowed) -> None:
    assert _code_value(entry.code) == pytest.approx(entry.value), f"{entry.page}: {entry.text!r} vs {entry.code}"
    shown = float(re.search(r"\d+(?:\.\d+)?", entry.text).group(0))
    # The prose writes a share as a percentage or as it is.
    assert shown in (pytest.approx(entry.value), pytest.approx(100 * entry.value)), entry


@pytest.mark.parametrize("text", [
    "The method scored UF1 0.417 on the composite.",
    "The book took 12.5 s to build.",
    "chapter 04 491 s",
    "34 % of the clips",
    "agreed on 97.4% of them",
    "0.675 ± 0.044",
    "UF1 0.493 [0.43, 0.56]",
    "the network minus HOG, -0.097",
    "ran 2.9x faster",
    "UF1 0.48 at x5",
    "about 0.45 on unseen subjects",
    "at 41 fps",
    "`merlib evaluate` printed 0.812",
])
def test_a_hand_typed_result_is_found(text: str) -> None:
    assert unsourced_results(f"# Page\n\n{text}\n", "x.md", ()), text


@pytest.mark.parametrize("text", [
    "{glue:text}`uf1_full:.3f` and {glue}`n_samples`",
    "(see {cite}`liu2022lightweight`)",
    "Python 3.11 and mathjax 3.2.2, torch==2.13.0",
    "arXiv:2110.02178, doi:10.3389/fnbot.2022.922761, https://example.org/a/1.234",
    "Section 3.2 of the paper, Table 3.1",
    "`merlib synth --amplitude-scale 1.0 --appearance-strength 0.75`",
    "```bash\nmerlib synth --weak-fraction 0.125\n```",
    "dropout 0.5, lr 0.01, 0.02-0.04 IOD, crop 2.5 IOD wide",
    "```{glue:figure} amplitude_curve\n:name: fig-amp 0.123\n```",
])
def test_what_is_not_a_result_is_not_found(text: str) -> None:
    assert not unsourced_results(f"# Page\n\n{text}\n", "x.md", ()), text


def test_a_number_typed_into_a_real_page_fails_it() -> None:
    raw = (BOOK / "results.md").read_text()
    heading = "## Every score with its uncertainty\n"
    typed = raw.replace(heading, heading + "\nThe full method scored 0.51 (UF1 0.512).\n", 1)
    line = raw[:raw.index(heading)].count("\n") + 3
    assert unsourced_results(raw, "results.md") == []
    assert [(f.line, f.text) for f in unsourced_results(typed, "results.md")] == \
        [(line, "scored 0.51"), (line, "UF1 0.512")]


def test_an_allowed_text_excuses_only_its_own_page() -> None:
    assert unsourced_results("an accuracy of 84.27%", "intro.md") == []
    assert unsourced_results("an accuracy of 84.27%", "results.md")
