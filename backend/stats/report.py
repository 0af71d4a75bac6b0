"""The study's statistics report: its methods paragraph, written from what was run.

Every sentence is built from the StudyStats it describes (the method names the tests return,
their permutation and bootstrap counts, the inclusion rule) and from the installed versions of
the libraries that computed them, so the report never describes an analysis it did not run.
"""

from __future__ import annotations

from backend.stats import agreement
from backend.stats.schemas import QuestionStats, StudyStats
from backend.studies.models import Study
from backend.templating import STATIC_DIR
from ml.analysis.provenance import software_versions as versions_of

STYLES = STATIC_DIR / "css" / "report.css"

# the libraries the numbers come from: scipy (Kruskal-Wallis), statsmodels (GEE, Fleiss' kappa,
# Holm), scikit-learn (weighted kappa), krippendorff (alpha), numpy (permutations, bootstrap)
LIBRARIES = ("piestudy", "numpy", "scipy", "statsmodels", "scikit-learn", "krippendorff")


def styles() -> str:
    """The report's style sheet, inlined so that a downloaded report needs nothing else."""
    return STYLES.read_text(encoding="utf-8")


def software_versions() -> dict[str, str]:
    return versions_of(LIBRARIES)


def _first(questions: list[QuestionStats], attribute: str) -> str | None:
    for q in questions:
        found = getattr(q, attribute)
        if found is not None:
            return str(found.method)
    return None


def methods(study: Study, stats: StudyStats, versions: dict[str, str]) -> list[str]:
    """The methods paragraphs of the report, in the order a paper's methods section has them."""
    design = (
        f"Each reader graded {study.cases_per_reader} cases of their own "
        f"(PIE fraction {study.pie_fraction:g})"
        + (f" and {study.overlap_cases} overlap cases read by every reader" if study.overlap_cases else "")
        + (f", after {study.practice_cases} practice cases that are not counted" if study.practice_cases else "")
        + f"; cases were allocated with seed {study.seed}. Counted: {stats.inclusion.text}."
    )  # fmt: skip
    tested = _first(stats.questions, "reader_aware")
    effect = _first(stats.questions, "effect")
    model = _first(stats.questions, "model")
    analysis = [
        "For each question, answers to PIE and non-PIE cases were compared in two ways. As in the "
        f"original study, every answer was pooled as if independent and tested with the "
        f"tie-corrected Kruskal-Wallis test (SciPy {versions['scipy']}), with epsilon squared "
        "H / (n - 1) and no interval for it (it cannot be negative)."
    ]
    if tested:
        analysis.append(
            f"With readers as clusters: {tested}, seeded with the study's seed; the P values of "
            "the three questions were adjusted by Holm's procedure (statsmodels "
            f"{versions['statsmodels']})."
        )
    if effect:
        analysis.append(
            f"The effect size is {effect}, with a 95% interval; for agreement it is also given "
            "as the difference in % yes."
        )
    if model:
        analysis.append(
            f"A model is shown for comparison only: {model} (statsmodels "
            f"{versions['statsmodels']}); with {stats.readers} readers as clusters its "
            "sandwich variance is anti-conservative, so the permutation test is the one reported."
        )
    if not tested:
        analysis.append("No reader-aware test could be computed on the answers counted.")
    ag = stats.agreement
    if ag.note is None:
        between = (
            f"Agreement between readers was measured on the {ag.overlap_cases} overlap cases read "
            f"by {ag.readers} readers: Fleiss' kappa for agreement (statsmodels), Cohen's kappa "
            f"with quadratic weights for every pair of readers (scikit-learn "
            f"{versions['scikit-learn']}), Krippendorff's alpha for ordinal data (krippendorff "
            f"{versions['krippendorff']}) and ICC(2,1), two-way random effects for absolute "
            "agreement, with its F-based interval, for quality and difficulty; the kappa and "
            f"alpha intervals are percentile bootstraps over cases ({agreement.RESAMPLES:,} "
            "resamples)."
        )
    else:
        between = f"No agreement between readers is reported: {ag.note}."
    software = "Computed by " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."
    return [design, " ".join(analysis), between, software]
