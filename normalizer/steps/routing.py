"""Routing: which category the complaint is, which agency handles it, and which unit of that agency."""

from __future__ import annotations

from normalizer.classifier import ComplaintClassifier, default_classifier
from normalizer.pipeline import Decision, Draft, Place, Routing
from normalizer.taxonomy import Agency, Kota, Taxonomy


class RouteComplaint:
    """Fills `draft.routing` from the text and records one decision for the category and one for the agency.

    The category the citizen chose in the channel's own app (`category_hint`, JAKI's menu), else the
    channel's service code, only adds weight to the category it names: citizens pick "Lainnya" or the
    first entry often enough that it cannot decide alone.
    """

    name = "routing"

    def __init__(self, classifier: ComplaintClassifier | None = None) -> None:
        # Trained lazily at the first message rather than at import, so building a pipeline stays cheap.
        self._classifier = classifier

    @property
    def classifier(self) -> ComplaintClassifier:
        if self._classifier is None:
            self._classifier = default_classifier()
        return self._classifier

    def __call__(self, draft: Draft) -> None:
        classifier = self.classifier
        taxonomy = classifier.taxonomy
        text = draft.analysis_text or draft.text.lower()
        prediction = classifier.predict(text, hint=draft.original.category_hint or draft.service_code)
        category = taxonomy.category(prediction.category)
        agency = taxonomy.agency(prediction.agency)
        threshold = taxonomy.settings.confidence_threshold
        needs_choice = prediction.confidence < threshold
        unit = agency_unit(taxonomy, agency, draft.place)
        draft.routing = Routing(
            category_code=category.code,
            category_name=category.name,
            agency_code=agency.code,
            agency_name=agency.name,
            agency_unit=unit,
            confidence=round(prediction.confidence, 4),
            needs_choice=needs_choice,
            reasons=[*prediction.reasons, prediction.agency_reason],
            alternatives=prediction.alternatives,
        )
        alternatives = ", ".join(f"{code} {p:.2f}" for code, p in prediction.alternatives)
        verdict = f"below the threshold {threshold:.2f}: admin chooses" if needs_choice else "confident"
        draft.decide(
            Decision(
                step=self.name,
                field="category",
                value=category.code,
                reason="; ".join([*prediction.reasons, verdict, f"alternatives: {alternatives or 'none'}"]),
                confidence=round(prediction.confidence, 4),
            )
        )
        draft.decide(
            Decision(
                step=self.name,
                field="agency",
                value=agency.code,
                reason=f"{prediction.agency_reason}; unit {unit}",
                confidence=round(prediction.agency_confidence, 4),
            )
        )


def agency_unit(taxonomy: Taxonomy, agency: Agency, place: Place) -> str:
    """The agency's unit for the report's place: the first template the place can fill, else the agency."""
    kota = _kota(taxonomy, place)
    known: dict[str, str] = {}
    if kota is not None:
        known["kota"] = kota.name
        known["kota_full"] = kota.full_name
    if place.kecamatan_name:
        known["kecamatan"] = place.kecamatan_name
    if place.kelurahan_name:
        known["kelurahan"] = place.kelurahan_name
    for template in agency.units:
        try:
            return template.format(**known)
        except KeyError:
            continue  # this template needs a level the place does not give; try the next, coarser one
    return agency.name


def _kota(taxonomy: Taxonomy, place: Place) -> Kota | None:
    if place.kota_code and place.kota_code in taxonomy.kota:
        return taxonomy.kota[place.kota_code]
    # A place step may know the kota's name but not its code ("Jakarta Pusat", "Kota Administrasi ...").
    if place.kota_name:
        wanted = place.kota_name.strip().lower()
        for kota in taxonomy.kota.values():
            # "Kepulauan Seribu" names the kabupaten as surely as its full name does.
            if wanted in (kota.name.lower(), kota.full_name.lower()) or kota.full_name.lower().endswith(f" {wanted}"):
                return kota
    if place.kelurahan_code or place.kecamatan_code:
        prefix = (place.kelurahan_code or place.kecamatan_code or "")[:5]
        return taxonomy.kota.get(prefix)
    return None
