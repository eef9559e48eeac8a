"""Default service catalogue of the simulated CRM, in GeoReport v2 service-list/definition shape.

Callers may rely on: ``service_list()`` returning the items of ``GET /services.json``,
``service_definition(code)`` returning the body of ``GET /services/{code}.json`` (or ``None``),
and ``find_service(code)`` giving the internal ``Service`` (with agency and attributes) or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Open311 datatypes an attribute may declare.
DATATYPES = frozenset({"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"})


@dataclass(frozen=True)
class AttributeValue:
    """One allowed value of a (single|multi)valuelist attribute."""

    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    """A service attribute the client fills in as ``attribute[code]=value``."""

    code: str
    datatype: str
    required: bool
    description: str
    datatype_description: str = ""
    order: int = 1
    values: tuple[AttributeValue, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Render in the spec's service-definition attribute format."""
        data: dict[str, Any] = {
            "variable": True,
            "code": self.code,
            "datatype": self.datatype,
            "required": self.required,
            "datatype_description": self.datatype_description or None,
            "order": self.order,
            "description": self.description,
        }
        if self.values:
            data["values"] = [{"key": v.key, "name": v.name} for v in self.values]
        return data


@dataclass(frozen=True)
class Service:
    """One request type of the CRM. ``agency`` becomes ``agency_responsible`` on its requests."""

    service_code: str
    service_name: str
    description: str
    group: str
    keywords: tuple[str, ...]
    agency: str
    attributes: tuple[Attribute, ...] = field(default=())

    @property
    def metadata(self) -> bool:
        """Per spec, ``metadata`` is true exactly when the service has attributes to fill in."""
        return bool(self.attributes)

    def to_list_item(self) -> dict[str, Any]:
        """Render as an item of ``GET /services.json``."""
        return {
            "service_code": self.service_code,
            "service_name": self.service_name,
            "description": self.description,
            "metadata": self.metadata,
            "type": "realtime",
            # The spec defines keywords as one comma-separated string, not a list.
            "keywords": ",".join(self.keywords),
            "group": self.group,
        }

    def to_definition(self) -> dict[str, Any]:
        """Render as the body of ``GET /services/{service_code}.json``."""
        ordered = sorted(self.attributes, key=lambda a: a.order)
        return {"service_code": self.service_code, "attributes": [a.to_json() for a in ordered]}


DEFAULT_SERVICES: tuple[Service, ...] = (
    Service(
        "jalan",
        "Jalan Rusak",
        "Jalan berlubang, retak, atau amblas.",
        "Infrastruktur",
        ("jalan", "lubang", "aspal", "rusak"),
        "Dinas Bina Marga",
    ),
    Service(
        "sampah",
        "Sampah",
        "Sampah menumpuk atau tidak diangkut.",
        "Kebersihan",
        ("sampah", "tps", "bau"),
        "Dinas Lingkungan Hidup",
    ),
    Service(
        "banjir",
        "Banjir dan Genangan",
        "Genangan air, banjir, atau saluran tersumbat.",
        "Sumber Daya Air",
        ("banjir", "genangan", "got", "saluran"),
        "Dinas Sumber Daya Air",
    ),
    Service(
        "pju",
        "Penerangan Jalan Umum",
        "Lampu jalan mati atau rusak.",
        "Infrastruktur",
        ("lampu", "pju", "gelap"),
        "Dinas Bina Marga",
    ),
    Service(
        "parkir-liar",
        "Parkir Liar",
        "Kendaraan parkir di tempat terlarang atau juru parkir liar.",
        "Ketertiban",
        ("parkir", "jukir", "liar"),
        "Dinas Perhubungan",
    ),
    Service(
        "pohon",
        "Pohon Tumbang / Rawan",
        "Pohon tumbang, dahan patah, atau pohon yang membahayakan.",
        "Pertamanan",
        ("pohon", "tumbang", "dahan"),
        "Dinas Pertamanan dan Hutan Kota",
        attributes=(
            Attribute(
                code="jenis",
                datatype="singlevaluelist",
                required=True,
                description="Jenis kejadian",
                datatype_description="Pilih salah satu",
                order=1,
                values=(
                    AttributeValue("tumbang", "Pohon tumbang"),
                    AttributeValue("dahan-patah", "Dahan patah"),
                    AttributeValue("rawan", "Pohon rawan tumbang"),
                ),
            ),
            Attribute(
                code="keterangan",
                datatype="text",
                required=False,
                description="Keterangan tambahan (mis. menghalangi jalan)",
                order=2,
            ),
        ),
    ),
    Service(
        "lainnya",
        "Lainnya",
        "Pengaduan lain yang tidak masuk kategori di atas.",
        "Umum",
        ("lain", "umum"),
        "Unit Pengaduan Masyarakat",
    ),
)

_BY_CODE: dict[str, Service] = {s.service_code: s for s in DEFAULT_SERVICES}


def find_service(service_code: str) -> Service | None:
    """Return the catalogue entry for ``service_code``, or ``None`` if the CRM does not offer it."""
    return _BY_CODE.get(service_code)


def service_list() -> list[dict[str, Any]]:
    """Return the ``GET /services.json`` body (a fresh list each call; safe to mutate)."""
    return [s.to_list_item() for s in DEFAULT_SERVICES]


def service_definition(service_code: str) -> dict[str, Any] | None:
    """Return the ``GET /services/{code}.json`` body, or ``None`` for an unknown code."""
    service = find_service(service_code)
    return service.to_definition() if service else None
