"""Which category a complaint is and which agency handles it: phrase rules plus a small linear model.

Two kinds of evidence, both explainable to an admin:

- **phrase rules** from the taxonomy ("jalan berlubang" +3 for *jalan*), matched as whole words on the
  analysis form of the text;
- **a linear model** (TF-IDF of word 1-2 grams and character 3-5 grams inside words, multinomial logistic
  regression) trained on the team's labelled set. Character n-grams carry it over typos and slang the
  expander does not know ("bolong2", "lampuu"); word n-grams give readable reasons.

They are combined log-linearly: ``log p_model(c) + rule_weight * phrase_weight(c)``, renormalised; the
result is the confidence. The agency is the chosen category's default unless one of the category's agency
rules matches (a clogged *got* goes to the kelurahan's PPSU, a *kali* to Dinas Sumber Daya Air).

Training happens at first use (about a second on one core) and is cached per process.
Prediction does not call scikit-learn: it rebuilds the same features from the fitted vocabularies and
multiplies them into the coefficient matrix with numpy, because sklearn's per-call overhead on a single
document is several times the work itself. `tests/normalizer/test_routing.py` checks both paths agree.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from normalizer.taxonomy import Taxonomy, load_taxonomy, phrase_key
from normalizer.textforms import analysis_form

LABELLED_PATH = Path(__file__).resolve().parent / "data" / "complaints_labelled.jsonl"

# The word analyser's token: the same \w+ runs the phrase matcher splits on, so phrase keys and model
# n-grams are the same strings and one pass over the text serves both.
_WORD_PATTERN = r"(?u)\b\w+\b"
_TOKEN = re.compile(_WORD_PATTERN)
_MULTISPACE = re.compile(r"\s\s+")
_CHAR_RANGE = (3, 5)
# Weaker regularisation than sklearn's default (C=1): the texts are short and the n-gram features sparse, and
# C=1 leaves every class probability too flat to ever clear the confidence threshold. Not tuned on the test split.
_C = 10.0
_SEED = 0
# Distinct words whose character n-gram columns are remembered; a few MB at most, and bounded so a flood of
# random strings cannot grow the process.
_WORD_CACHE_SIZE = 200_000


class LabelledExample(BaseModel):
    """One line of the labelled set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    category: str
    agency: str
    split: Literal["train", "test"]


def load_examples(path: Path = LABELLED_PATH) -> list[LabelledExample]:
    """The labelled set, validated line by line; a bad line names the file and line number."""
    examples = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                examples.append(LabelledExample.model_validate(json.loads(line)))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not a labelled example: {exc}") from None
    return examples


@dataclass(frozen=True)
class Prediction:
    """A routing decision with everything an admin needs to trust or correct it."""

    category: str
    confidence: float
    agency: str
    #: Probability mass of all categories that would go to the same agency: the agency can be sure
    #: while the category is not (a hole in the road or in the sidewalk: Bina Marga either way).
    agency_confidence: float
    #: Why this agency: the default of the category, or the agency rule that matched.
    agency_reason: str
    reasons: list[str] = field(default_factory=list)
    #: Runner-up categories, best first, with their confidence.
    alternatives: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class _Phrase:
    category: int
    weight: float
    text: str


class ComplaintClassifier:
    """A trained classifier for one taxonomy; immutable after construction, safe to share across threads."""

    def __init__(self, taxonomy: Taxonomy, examples: Sequence[LabelledExample]) -> None:
        if not examples:
            raise ValueError("no labelled examples to train on")
        self.taxonomy = taxonomy
        self.codes = [c.code for c in taxonomy.categories]
        self._index = {code: i for i, code in enumerate(self.codes)}
        agency_codes = {a.code for a in taxonomy.agencies}
        for example in examples:
            if example.category not in self._index:
                raise ValueError(f"{example.id}: unknown category {example.category!r}")
            if example.agency not in agency_codes:
                raise ValueError(f"{example.id}: unknown agency {example.agency!r}")
        self._default_agencies = [c.agency for c in taxonomy.categories]
        self._build_rules()
        self._fit([analysis_form(e.text) for e in examples], [self._index[e.category] for e in examples])

    # -- rules ---------------------------------------------------------------------------------------
    def _build_rules(self) -> None:
        # Phrases of one or two words are looked up among the text's word n-grams; longer ones are
        # checked only where their first two words occur, so the common case costs a set lookup.
        self._phrases: dict[str, list[_Phrase]] = {}
        self._long_phrases: dict[str, list[tuple[tuple[str, ...], _Phrase]]] = {}
        # Agency rule phrase -> (category index, rule index) pairs.
        self._agency_phrases: dict[str, list[tuple[int, int]]] = {}
        self._long_agency: dict[str, list[tuple[tuple[str, ...], int, int]]] = {}
        for ci, category in enumerate(self.taxonomy.categories):
            for raw, weight in category.phrases.items():
                key = phrase_key(raw)
                phrase = _Phrase(ci, weight, key)
                words = tuple(key.split())
                if len(words) <= 2:
                    self._phrases.setdefault(key, []).append(phrase)
                else:
                    self._long_phrases.setdefault(" ".join(words[:2]), []).append((words, phrase))
            for ri, rule in enumerate(category.agency_rules):
                for raw in rule.when:
                    key = phrase_key(raw)
                    words = tuple(key.split())
                    if len(words) <= 2:
                        self._agency_phrases.setdefault(key, []).append((ci, ri))
                    else:
                        self._long_agency.setdefault(" ".join(words[:2]), []).append((words, ci, ri))
        self._rule_keys = set(self._phrases) | set(self._agency_phrases)
        self._rule_keys |= set(self._long_phrases) | set(self._long_agency)

    # -- model ---------------------------------------------------------------------------------------
    def _fit(self, texts: list[str], labels: list[int]) -> None:
        self._word = TfidfVectorizer(
            analyzer="word", token_pattern=_WORD_PATTERN, ngram_range=(1, 2), sublinear_tf=True, lowercase=True
        )
        self._char = TfidfVectorizer(analyzer="char_wb", ngram_range=_CHAR_RANGE, sublinear_tf=True, min_df=2)
        features = hstack([self._word.fit_transform(texts), self._char.fit_transform(texts)]).tocsr()
        # newton-cg converges in a handful of iterations here, three times faster than lbfgs, same optimum.
        model = LogisticRegression(C=_C, solver="newton-cg", max_iter=500, random_state=_SEED)
        model.fit(features, labels)
        self._model = model
        self._n_word = len(self._word.vocabulary_)
        # The fast path's tables: n-gram -> column, idf per column, and the coefficients laid out
        # feature-major so the columns of one message are one fancy-indexed read.
        self._word_vocab: dict[str, int] = dict(self._word.vocabulary_)
        self._char_vocab: dict[str, int] = dict(self._char.vocabulary_)
        self._word_idf = self._word.idf_.astype(np.float64)
        self._char_idf = self._char.idf_.astype(np.float64)
        self._word_columns: dict[str, np.ndarray] = {}
        self._idf = np.concatenate([self._word_idf, self._char_idf])
        # Classes absent from the training set get no column from sklearn; keep one per category anyway.
        coef = np.zeros((len(self.codes), features.shape[1]))
        intercept = np.full(len(self.codes), -1e3)
        for column, cls in enumerate(model.classes_):
            coef[int(cls)] = model.coef_[column]
            intercept[int(cls)] = model.intercept_[column]
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept = intercept
        word_names = self._word.get_feature_names_out()
        char_names = self._char.get_feature_names_out()
        self._feature_names = [str(n) for n in word_names] + [str(n) for n in char_names]

    def _features(self, text: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
        """The message's tokens and word n-grams (for the rules), and its model features as (columns, values).

        Reproduces the fitted vectorizers exactly (sublinear tf, idf, L2 norm per block). Character n-grams
        never cross a word (char_wb), so each word's columns are computed once and remembered: the per-message
        cost is then a dictionary lookup per word instead of a dozen per character.
        """
        lowered = text.lower()
        tokens = _TOKEN.findall(lowered)
        words = tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
        word_vocab = self._word_vocab
        word_cols = [word_vocab[g] for g in words if g in word_vocab]
        cache = self._word_columns
        parts = []
        for w in _MULTISPACE.sub(" ", lowered).split():
            cols = cache.get(w)
            if cols is None:
                cols = self._char_columns(w)
                if len(cache) < _WORD_CACHE_SIZE:
                    cache[w] = cols
            parts.append(cols)
        if not word_cols and not parts:
            return tokens, words, np.zeros(0, dtype=np.intp), np.zeros(0)
        # One pass over both blocks (char columns come after the word block): count every column, weight
        # by sublinear tf x idf, then L2-normalise each block on its own as the two vectorizers do.
        parts.append(np.asarray(word_cols, dtype=np.intp))
        columns, counts = np.unique(np.concatenate(parts), return_counts=True)
        values = (1.0 + np.log(counts)) * self._idf[columns]
        split = int(np.searchsorted(columns, self._n_word))
        word_norm = math.sqrt(float(values[:split] @ values[:split])) if split else 1.0
        char_norm = math.sqrt(float(values[split:] @ values[split:])) if split < len(values) else 1.0
        values[:split] /= word_norm
        values[split:] /= char_norm
        return tokens, words, columns, values

    def _char_columns(self, word: str) -> np.ndarray:
        """The char_wb n-gram columns of one whitespace-separated word, repeats kept (they are the counts)."""
        w = f" {word} "
        size = len(w)
        grams: list[str] = []
        lo, hi = _CHAR_RANGE
        # As sklearn's char_wb analyser: a padded word shorter than n yields itself once, then stops.
        for n in range(lo, hi + 1):
            if size <= n:
                grams.append(w)
                break
            grams.extend(w[i : i + n] for i in range(size - n + 1))
        vocab = self._char_vocab
        offset = self._n_word  # columns are absolute: the char block follows the word block
        return np.asarray([vocab[g] + offset for g in grams if g in vocab], dtype=np.intp)

    def model_probabilities(self, analysis_text: str) -> np.ndarray:
        """The model's class probabilities alone, in taxonomy order (no rules)."""
        _, _, columns, values = self._features(analysis_text)
        return self._softmax(self._logits(columns, values))

    def _logits(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        if len(columns) == 0:
            return self._intercept.copy()
        return values @ self._coef_t[columns] + self._intercept

    @staticmethod
    def _softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max())
        return e / e.sum()

    # -- prediction ------------------------------------------------------------------------------------
    def predict(self, analysis_text: str, *, hint: str | None = None, explain: bool = True) -> Prediction:
        """Classify one message given its analysis form; `hint` is a category code suggested by the channel."""
        settings = self.taxonomy.settings
        tokens, words, columns, values = self._features(analysis_text)
        logits = self._logits(columns, values)
        matched: list[_Phrase] = []
        agency_hits: set[tuple[int, int]] = set()
        # Only the n-grams some rule mentions are looked at: a C-level set intersection first.
        for gram in self._rule_keys.intersection(words):
            for phrase in self._phrases.get(gram, ()):
                matched.append(phrase)
            for hit in self._agency_phrases.get(gram, ()):
                agency_hits.add(hit)
            for phrase_words, phrase in self._long_phrases.get(gram, ()):
                if _contains(tokens, phrase_words):
                    matched.append(phrase)
            for phrase_words, ci, ri in self._long_agency.get(gram, ()):
                if _contains(tokens, phrase_words):
                    agency_hits.add((ci, ri))
        matched = _drop_contained(matched)
        hint_index = self._index.get(hint) if hint else None
        scores = logits
        if matched or hint_index is not None:
            rule_scores = np.zeros(len(self.codes))
            for phrase in matched:
                rule_scores[phrase.category] += phrase.weight
            if hint_index is not None:
                rule_scores[hint_index] += settings.service_code_hint_weight
            scores = logits + settings.rule_weight * rule_scores
        # softmax(log p_model + w * rules) == softmax(logits + w * rules): the model's normaliser cancels.
        combined_array = self._softmax(scores)
        combined = combined_array.tolist()
        order = sorted(range(len(combined)), key=combined.__getitem__, reverse=True)
        best = order[0]
        confidence = combined[best]
        agency, agency_reason = self._agency_for(best, agency_hits)
        agencies = self._default_agencies
        if agency_hits:
            agencies = list(agencies)
            for ci in {ci for ci, _ in agency_hits}:
                agencies[ci] = self._agency_for(ci, agency_hits)[0]
        agency_confidence = sum(p for p, a in zip(combined, agencies, strict=True) if a == agency)
        alternatives = [(self.codes[i], round(combined[i], 3)) for i in order[1 : 1 + settings.max_alternatives]]
        reasons: list[str] = []
        if explain:
            model_p = float(self._softmax(logits)[best])
            reasons = self._reasons(best, matched, hint_index, columns, values, model_p)
        return Prediction(
            category=self.codes[best],
            confidence=min(1.0, max(0.0, confidence)),
            agency=agency,
            agency_confidence=min(1.0, max(0.0, agency_confidence)),
            agency_reason=agency_reason,
            reasons=reasons,
            alternatives=alternatives,
        )

    def _agency_for(self, ci: int, hits: set[tuple[int, int]]) -> tuple[str, str]:
        category = self.taxonomy.categories[ci]
        # The first matching rule in file order wins, so the file reads as a priority list.
        for ri, rule in enumerate(category.agency_rules):
            if (ci, ri) in hits:
                return rule.agency, f"agency rule {category.code}[{ri}] -> {rule.agency}: {rule.why}"
        return category.agency, f"default agency of {category.code}"

    def _reasons(
        self,
        best: int,
        matched: list[_Phrase],
        hint_index: int | None,
        columns: np.ndarray,
        values: np.ndarray,
        model_p: float,
    ) -> list[str]:
        code = self.codes[best]
        reasons = [
            f"phrase '{p.text}' ({p.weight:+.1f}, rule {code})"
            for p in sorted(matched, key=lambda p: -p.weight)
            if p.category == best
        ]
        if hint_index == best:
            reasons.append(f"channel service code '{code}' (+{self.taxonomy.settings.service_code_hint_weight:.1f})")
        against = sorted({self.codes[p.category] for p in matched if p.category != best})
        if against:
            reasons.append("phrases also matched: " + ", ".join(against))
        terms = self._top_terms(best, columns, values)
        model_line = f"model: p={model_p:.2f}"
        if terms:
            model_line += ", words " + ", ".join(f"'{t}'" for t in terms)
        reasons.append(model_line)
        return reasons

    def _top_terms(self, best: int, columns: np.ndarray, values: np.ndarray) -> list[str]:
        """The word n-grams pushing hardest toward the chosen class.

        Character n-grams weigh in the decision but are not shown: fragments like 'ubang' explain nothing
        to an admin that the words they come from do not.
        """
        limit = self.taxonomy.settings.max_model_terms
        split = int(np.searchsorted(columns, self._n_word))
        if split == 0 or limit == 0:
            return []
        contribution = values[:split] * self._coef_t[columns[:split], best]
        positive = np.flatnonzero(contribution > 0)
        if positive.size == 0:
            return []
        ranked = positive[np.argsort(-contribution[positive], kind="stable")][: limit * 3]
        names = self._feature_names
        terms: list[str] = []
        for i in ranked.tolist():
            name = names[int(columns[i])]
            # A bigram repeating a word already shown adds nothing.
            redundant = False
            for shown in terms:
                if name in shown or shown in name:
                    redundant = True
                    break
            if not redundant:
                terms.append(name)
                if len(terms) >= limit:
                    break
        return terms


def _drop_contained(matched: list[_Phrase]) -> list[_Phrase]:
    """A phrase inside a longer matched phrase of the same category is one piece of evidence, not two.

    Without this "taman kota" (+3) and "taman" (+2.5) would add up and outweigh "pohon" in
    "pohon di taman kota miring".
    """
    if len(matched) < 2:
        return matched
    kept = []
    for phrase in matched:
        inner = f" {phrase.text} "
        if not any(
            other.category == phrase.category and other.text != phrase.text and inner in f" {other.text} "
            for other in matched
        ):
            kept.append(phrase)
    return kept


def _contains(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    first = phrase[0]
    return any(tokens[i] == first and tuple(tokens[i : i + n]) == phrase for i in range(len(tokens) - n + 1))


def train(
    taxonomy: Taxonomy | None = None,
    examples: Iterable[LabelledExample] | None = None,
    *,
    include_test: bool = False,
) -> ComplaintClassifier:
    """A freshly trained classifier: on the 'train' split unless `include_test` (production: everything)."""
    taxonomy = taxonomy or load_taxonomy()
    pool = list(examples) if examples is not None else load_examples()
    chosen = [e for e in pool if include_test or e.split == "train"]
    return ComplaintClassifier(taxonomy, chosen)


@functools.cache
def default_classifier(include_test: bool = False) -> ComplaintClassifier:
    """The process's classifier for the default taxonomy and labelled set, trained once at first use."""
    return train(include_test=include_test)


_TRAINED: dict[str, ComplaintClassifier] = {}


def classifier_for(taxonomy: Taxonomy | None) -> ComplaintClassifier:
    """The production classifier: trained on the whole labelled set (held-out part included), once per
    process and taxonomy. Quality is measured by `evaluate`, which trains without the held-out part."""
    if taxonomy is None:
        return default_classifier(include_test=True)
    key = taxonomy.model_dump_json()
    if key not in _TRAINED:
        _TRAINED[key] = train(taxonomy, include_test=True)
    return _TRAINED[key]


def evaluate(split: Literal["train", "test"] = "test") -> dict[str, object]:
    """Accuracy and macro-F1 of category and agency on one split, with per-agency precision/recall/F1.

    The model is always trained on the 'train' split only, so 'test' is a held-out measurement.
    """
    classifier = default_classifier(include_test=False)
    examples = [e for e in load_examples() if e.split == split]
    predictions = [classifier.predict(analysis_form(e.text), explain=False) for e in examples]
    true_cat = [e.category for e in examples]
    pred_cat = [p.category for p in predictions]
    true_ag = [e.agency for e in examples]
    pred_ag = [p.agency for p in predictions]
    agencies = sorted(set(true_ag) | set(pred_ag))
    precision, recall, f1, support = precision_recall_fscore_support(true_ag, pred_ag, labels=agencies, zero_division=0)
    return {
        "split": split,
        "n": len(examples),
        "category": {
            "accuracy": float(accuracy_score(true_cat, pred_cat)),
            "macro_f1": float(f1_score(true_cat, pred_cat, average="macro", zero_division=0)),
        },
        "agency": {
            "accuracy": float(accuracy_score(true_ag, pred_ag)),
            "macro_f1": float(f1_score(true_ag, pred_ag, average="macro", zero_division=0)),
        },
        "per_agency": {
            code: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, code in enumerate(agencies)
        },
    }
