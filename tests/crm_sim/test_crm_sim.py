"""Behaviour of the CRM simulator as an Open311 GeoReport v2 client sees it (real HTTP on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crm_sim.server import RunningCRMSim

KEY = "test-key"
JAKARTA = {"lat": "-6.2088", "long": "106.8456"}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningCRMSim]:
    with RunningCRMSim(db_path=tmp_path / "crm.sqlite3", api_keys={KEY}) as running:
        yield running


@pytest.fixture
def client(sim: RunningCRMSim) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=5.0) as http:
        yield http


def submit(client: httpx.Client, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    form = {"api_key": KEY, "service_code": "jalan", "description": "Lubang besar", **fields}
    return client.post("requests.json", data=form, headers=headers)


def assert_error_array(response: httpx.Response, code: int) -> list[dict[str, object]]:
    assert response.status_code == code
    body = response.json()
    assert isinstance(body, list) and body
    assert all(item["code"] == code and item["description"] for item in body)
    return body


def test_services_list_and_definition(client: httpx.Client) -> None:
    services = client.get("services.json").json()
    by_code = {s["service_code"]: s for s in services}
    assert {"jalan", "sampah", "banjir", "pju", "parkir-liar", "lainnya", "pohon"} <= set(by_code)
    assert by_code["jalan"]["service_name"] == "Jalan Rusak"
    assert by_code["jalan"]["group"] == "Infrastruktur"
    assert by_code["jalan"]["metadata"] is False
    assert by_code["pohon"]["metadata"] is True

    definition = client.get("services/pohon.json").json()
    jenis = next(a for a in definition["attributes"] if a["code"] == "jenis")
    assert jenis["required"] is True
    assert jenis["datatype"] == "singlevaluelist"
    assert {"key": "tumbang", "name": "Pohon tumbang"} in jenis["values"]

    assert_error_array(client.get("services/tidak-ada.json"), 404)


def test_create_with_lat_long_is_readable_back(client: httpx.Client) -> None:
    response = submit(client, **JAKARTA, email="warga@example.id", first_name="Siti")
    assert response.status_code == 200
    [answer] = response.json()
    request_id = answer["service_request_id"]
    assert request_id.startswith("CRM-")
    assert answer["service_notice"]

    [item] = client.get(f"requests/{request_id}.json").json()
    assert item["status"] == "open"
    assert item["service_name"] == "Jalan Rusak"
    assert item["description"] == "Lubang besar"
    assert item["lat"] == pytest.approx(-6.2088) and item["long"] == pytest.approx(106.8456)
    assert item["requested_datetime"].endswith("+07:00")


def test_create_with_address_string_and_sequential_ids(client: httpx.Client) -> None:
    first = submit(client, address_string="Jl. Sudirman No. 1, Jakarta").json()[0]["service_request_id"]
    second = submit(client, address_string="Jl. Thamrin 10").json()[0]["service_request_id"]
    assert int(second.split("-")[1]) == int(first.split("-")[1]) + 1
    [item] = client.get(f"requests/{first}.json").json()
    assert item["address"] == "Jl. Sudirman No. 1, Jakarta"


def test_missing_or_wrong_api_key_is_403(client: httpx.Client) -> None:
    response = client.post("requests.json", data={"service_code": "jalan", **JAKARTA})
    assert_error_array(response, 403)
    assert_error_array(submit(client, api_key="salah", **JAKARTA), 403)
    assert client.get("_sim/stats").json()["requests"] == 0


def test_unknown_service_code(client: httpx.Client) -> None:
    body = assert_error_array(submit(client, service_code="ufo", **JAKARTA), 404)
    assert "service_code" in str(body[0]["description"])


def test_no_location_is_400_with_description(client: httpx.Client) -> None:
    body = assert_error_array(submit(client), 400)
    assert any("location" in str(item["description"]) for item in body)


def test_required_attribute_enforced(client: httpx.Client) -> None:
    missing = assert_error_array(submit(client, service_code="pohon", **JAKARTA), 400)
    assert any("jenis" in str(item["description"]) for item in missing)
    wrong = submit(client, service_code="pohon", **JAKARTA, **{"attribute[jenis]": "meteor"})
    assert_error_array(wrong, 400)
    ok = submit(client, service_code="pohon", **JAKARTA, **{"attribute[jenis]": "tumbang"})
    assert ok.status_code == 200


def test_idempotency_key_returns_same_answer_and_creates_once(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "kanal-42-attempt"}
    first = submit(client, headers=headers, **JAKARTA)
    again = submit(client, headers=headers, **JAKARTA)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert client.get("_sim/stats").json()["requests"] == 1


def test_deferred_mode_token_resolves(tmp_path: Path) -> None:
    with (
        RunningCRMSim(db_path=tmp_path / "crm.sqlite3", api_keys={KEY}, deferred=True) as sim,
        httpx.Client(base_url=sim.base_url, timeout=5.0) as client,
    ):
        [answer] = submit(client, **JAKARTA).json()
        assert "service_request_id" not in answer
        [resolved] = client.get(f"tokens/{answer['token']}.json").json()
        assert resolved["token"] == answer["token"]
        assert resolved["service_request_id"].startswith("CRM-")
        assert client.get(f"requests/{resolved['service_request_id']}.json").status_code == 200
        assert_error_array(client.get("tokens/unknown-token.json"), 404)


def test_deferred_mode_with_delay_is_pending_first(tmp_path: Path) -> None:
    db = tmp_path / "crm.sqlite3"
    with (
        RunningCRMSim(db_path=db, api_keys={KEY}, deferred=True, deferred_delay=0.5) as sim,
        httpx.Client(base_url=sim.base_url, timeout=5.0) as client,
    ):
        token = submit(client, **JAKARTA).json()[0]["token"]
        assert client.get(f"tokens/{token}.json").json()[0]["service_request_id"] is None
        time.sleep(0.7)
        assert client.get(f"tokens/{token}.json").json()[0]["service_request_id"].startswith("CRM-")


def test_get_requests_by_comma_separated_ids(client: httpx.Client) -> None:
    ids = [submit(client, **JAKARTA).json()[0]["service_request_id"] for _ in range(3)]
    wanted = f"{ids[2]},{ids[0]},CRM-999999"
    # The id list wins over other filters, per spec.
    items = client.get("requests.json", params={"service_request_id": wanted, "status": "closed"}).json()
    assert [i["service_request_id"] for i in items] == [ids[2], ids[0]]
    assert len(client.get("requests.json").json()) == 3


def test_status_change_to_selesai_closes_with_note(client: httpx.Client) -> None:
    request_id = submit(client, **JAKARTA).json()[0]["service_request_id"]
    before = client.get(f"requests/{request_id}.json").json()[0]
    time.sleep(1.1)  # timestamps are rendered to the second
    response = client.post(
        f"_sim/requests/{request_id}/status", json={"crm_status": "Selesai", "note": "Sudah ditambal"}
    )
    assert response.status_code == 200
    after = client.get(f"requests/{request_id}.json").json()[0]
    assert after["status"] == "closed"
    assert after["status_notes"] == "Sudah ditambal"
    assert after["updated_datetime"] > before["updated_datetime"]
    closed = client.get("requests.json", params={"status": "closed"}).json()
    assert [i["service_request_id"] for i in closed] == [request_id]
    assert_error_array(client.post(f"_sim/requests/{request_id}/status", json={"crm_status": "Hilang"}), 400)
    assert_error_array(client.post("_sim/requests/CRM-999999/status", json={"crm_status": "Proses"}), 404)


def test_data_survives_restart_on_same_port(tmp_path: Path) -> None:
    sim = RunningCRMSim(db_path=tmp_path / "crm.sqlite3", api_keys={KEY})
    with sim, httpx.Client(base_url=sim.base_url, timeout=5.0) as client:
        request_id = submit(client, **JAKARTA).json()[0]["service_request_id"]
    port = sim.port
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.base_url}services.json", timeout=1.0)
    with sim, httpx.Client(base_url=sim.base_url, timeout=5.0) as client:
        assert sim.port == port
        [item] = client.get(f"requests/{request_id}.json").json()
        assert item["description"] == "Lubang besar"
        assert client.get("_sim/stats").json()["requests"] == 1


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\x00\xff\xfe garbage %zz &&==", "application/x-www-form-urlencoded"),
        (b"--nope\r\nbroken", "multipart/form-data; boundary=xyz"),
        (b'{"service_code": "jalan"}', "application/json"),
    ],
)
def test_garbage_body_is_400_array(client: httpx.Client, content: bytes, content_type: str) -> None:
    response = client.post(
        "requests.json", params={"api_key": KEY}, content=content, headers={"Content-Type": content_type}
    )
    assert_error_array(response, 400)


def test_malformed_fields_are_400_never_500(client: httpx.Client) -> None:
    assert_error_array(submit(client, lat="abc", long="106.8"), 400)
    assert_error_array(submit(client, lat="91", long="106.8"), 400)
    assert_error_array(submit(client, lat="nan", long="106.8"), 400)
    assert_error_array(submit(client, address_string="x", description="a" * 4001), 400)
    assert_error_array(client.get("requests.json", params={"start_date": "kemarin"}), 400)
    assert_error_array(client.get("requests.json", params={"status": "lost"}), 400)
    assert_error_array(client.post("_sim/requests/CRM-000001/status", content=b"{not json"), 400)
    assert_error_array(client.get("no/such/route"), 404)
    assert_error_array(client.delete("requests.json"), 405)
    assert client.get("_sim/stats").json()["requests"] == 0


def test_json_push_receiver_verifies_the_signature_and_deduplicates(tmp_path: Path) -> None:
    import hashlib
    import hmac
    import json

    secret = "push-secret-0123456789"
    with RunningCRMSim(db_path=tmp_path / "push.sqlite3", api_keys={KEY}, push_secrets=[secret]) as sim:
        body = json.dumps({"service_code": "jalan", "text": "Jalan berlubang", "lat": -6.2, "lng": 106.8}).encode()
        stamp = str(int(time.time()))
        good = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Idempotency-Key": "k-1"}
        forged = httpx.post(sim.push_url, content=body, headers={**headers, "X-Kanal-Signature": f"t={stamp},v1=00"})
        assert_error_array(forged, 401)
        signed = {**headers, "X-Kanal-Signature": f"t={stamp},v1={good}"}
        first = httpx.post(sim.push_url, content=body, headers=signed)
        again = httpx.post(sim.push_url, content=body, headers=signed)
        assert first.status_code == again.status_code == 200
        assert first.json()["id"] == again.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
        unkeyed = {k: v for k, v in signed.items() if k != "Idempotency-Key"}
        assert_error_array(httpx.post(sim.push_url, content=body, headers=unkeyed), 400)
        assert httpx.get(f"{sim.base_url}_sim/stats").json()["requests"] == 1


def test_injected_faults_answer_error_arrays_and_traffic_is_counted(sim: RunningCRMSim, client: httpx.Client) -> None:
    assert client.post("_sim/faults", json={"status": 503, "count": 1, "path": "/requests.json"}).status_code == 200
    assert_error_array(submit(client, **JAKARTA), 503)
    assert submit(client, **JAKARTA).status_code == 200
    traffic = client.get("_sim/traffic").json()
    assert traffic["POST /requests.json 503"] == 1 and traffic["POST /requests.json 200"] == 1
