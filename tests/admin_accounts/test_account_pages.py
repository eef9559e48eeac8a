"""The account screen for superadmins: what each person notices, on both engines.

A superadmin manages accounts through the real forms (with their CSRF tokens); the people whose
accounts change notice it where they would: at the sign-in form, on their next page, in their queue.
"""

from __future__ import annotations

import html
import json

import httpx

from review_queue.audit import AuditAction
from review_queue.tables import AdminRole
from tests.admin.support import GAMBIR, MENTENG, Browser, add_report, admin_gateway, audit_rows, csrf_token_in
from tests.admin_accounts.support import PASSWORD, account, make, post_form, sessions_of, signed_in, usernames

NEW_PASSWORD = "tongkat-ajaib-2026"
NOT_FOUND = "Halaman atau akun ini tidak ada"
LAST_SUPERADMIN = "Ini satu-satunya superadmin yang aktif"


def _new_account(browser: Browser, **fields: str) -> httpx.Response:
    form = {
        "username": "",
        "role": "reviewer",
        "scope_channels": "",
        "scope_wilayah": "",
        "language": "id",
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    return post_form(browser, "/admin/accounts/new", {**form, **fields})


def _textarea(page: httpx.Response, name: str) -> str:
    start = page.text.index(f'name="{name}"')
    opened = page.text.index(">", start) + 1
    return html.unescape(page.text[opened : page.text.index("</textarea>", opened)])


def _alert(page: httpx.Response) -> str:
    start = page.text.index('class="alert" role="alert"')
    return html.unescape(page.text[start : page.text.index("</div>", start)])


def test_a_superadmin_creates_a_wilayah_admin_who_sees_only_their_kelurahan(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        in_gambir = add_report(engine, channel_id="api:partner", kelurahan=GAMBIR)
        in_menteng = add_report(engine, channel_id="api:partner", kelurahan=MENTENG)
        with signed_in(gateway, "kepala") as boss:
            listing = boss.http.get("/admin/accounts")
            assert listing.status_code == 200
            assert '<a href="/admin/accounts" aria-current="page">Akun admin</a>' in listing.text
            assert "kepala" in listing.text and "Semua laporan" in listing.text

            created = _new_account(
                boss, username="lurah.gambir", role="wilayah_admin", scope_wilayah=GAMBIR, language="en"
            )
            assert created.status_code == 303, created.text
            lurah = account(engine, "lurah.gambir")
            assert created.headers["location"] == f"/admin/accounts/{lurah.id}?done=created"
            page = boss.http.get(created.headers["location"])
            assert "Akun dibuat" in page.text
            assert f"Gambir ({GAMBIR})" in page.text and "Admin wilayah" in page.text
            assert "English" in page.text

            listing = boss.http.get("/admin/accounts")
            row = listing.text[listing.text.index(f'data-account="{lurah.id}"') :]
            row = row[: row.index("</tr>")]
            assert "lurah.gambir" in row and "Admin wilayah" in row and f"Gambir ({GAMBIR})" in row
            assert "Aktif" in row and "belum tercatat" in row  # never signed in yet

        with signed_in(gateway, "lurah.gambir") as lurah_browser:
            queue = lurah_browser.http.get("/admin/queue")
            assert queue.status_code == 200, queue.text
            assert in_gambir.ticket_code in queue.text
            assert in_menteng.ticket_code not in queue.text
            assert "Areas: Gambir" in queue.text  # the account's language is English
            assert 'href="/admin/accounts"' not in queue.text  # no account screen for a wilayah admin

        with signed_in(gateway, "kepala") as boss:
            listing = boss.http.get("/admin/accounts")
            row = listing.text[listing.text.index(f'data-account="{lurah.id}"') :]
            assert "WIB" in row[: row.index("</tr>")], "the sign-in is now recorded, in Jakarta time"

        (created_row,) = audit_rows(engine, AuditAction.ACCOUNT_CREATED)
        assert created_row.actor_name == "kepala" and created_row.target_id == lurah.id
        assert created_row.detail == {
            "username": "lurah.gambir",
            "role": "wilayah_admin",
            "scope_channels": [],
            "scope_wilayah": [GAMBIR],
            "language": "en",
        }


def test_a_bad_account_is_refused_on_the_form_with_the_values_kept(database_url: str) -> None:
    with admin_gateway(database_url) as gateway, Browser(gateway) as boss:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        make(engine, "rina")
        assert boss.login("kepala").status_code == 303

        refused = _new_account(
            boss,
            username="lurah.salah",
            role="wilayah_admin",
            scope_channels="twitter:*",
            scope_wilayah=f"{GAMBIR}, 31.71.99.9999",
            language="en",
        )
        assert refused.status_code == 422
        assert "Kode wilayah 31.71.99.9999 tidak dikenal" in _alert(refused), "in the admin's language"
        assert 'value="lurah.salah"' in refused.text
        assert '<option value="wilayah_admin" selected>' in refused.text
        assert '<option value="en" selected>' in refused.text
        assert _textarea(refused, "scope_channels") == "twitter:*"
        assert _textarea(refused, "scope_wilayah") == f"{GAMBIR}, 31.71.99.9999"
        assert PASSWORD not in refused.text, "a password is never sent back"
        assert "kata sandi tidak ditampilkan lagi" in refused.text

        others = [
            ({"username": "kanal", "role": "channel_admin"}, "Admin kanal perlu sedikitnya satu kanal"),
            ({"username": "lurah", "role": "wilayah_admin"}, "Admin wilayah perlu sedikitnya satu kode wilayah"),
            ({"username": "rina"}, "Nama pengguna rina sudah dipakai"),
            ({"username": "baru", "password": "pendek", "password_again": "pendek"}, "Kata sandi minimal 10 karakter"),
            ({"username": "baru", "password_again": PASSWORD + "x"}, "Kedua kata sandi berbeda"),
            ({"username": "   "}, "Nama pengguna harus 1 sampai 100 karakter"),
            ({"username": "baru", "role": "emperor"}, "Peran emperor tidak dikenal"),
            ({"username": "baru", "role": "reviewer", "scope_channels": "twitter"}, "Cakupan kanal twitter bukan id"),
        ]
        for fields, message in others:
            page = _new_account(boss, **fields)
            assert page.status_code == 422, (fields, page.text)
            assert message in _alert(page), (fields, _alert(page))

        assert usernames(engine) == {"kepala", "rina"}, "nothing was created"
        assert audit_rows(engine, AuditAction.ACCOUNT_CREATED) == []


def test_only_superadmins_reach_the_account_screen(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        rina = make(engine, "rina")
        make(engine, "lurah", AdminRole.WILAYAH_ADMIN, scope_wilayah=[GAMBIR])
        with Browser(gateway) as nobody:
            assert nobody.http.get("/admin/accounts").headers["location"] == "/admin/login?next=/admin/accounts"
        for username in ("rina", "lurah"):
            with signed_in(gateway, username) as browser:
                token = browser.session_token()
                pages = [
                    browser.http.get("/admin/accounts"),
                    browser.http.get("/admin/accounts/new"),
                    browser.http.get(f"/admin/accounts/{rina.id}"),
                    browser.http.post(f"/admin/accounts/{rina.id}/disable", data={"csrf_token": token}),
                    browser.http.post(
                        "/admin/accounts/new",
                        data={"csrf_token": token, "username": "x", "role": "superadmin", "password": "p" * 12},
                    ),
                ]
                for page in pages:
                    assert page.status_code == 404, (username, page.request.url, page.text)
                    assert NOT_FOUND in page.text
                account_page = browser.http.get("/admin/account")
                assert 'href="/admin/accounts"' not in account_page.text, "no menu entry for them"
        assert not account(engine, "rina").disabled
        assert usernames(engine) == {"kepala", "rina", "lurah"}
        assert [row.action for row in audit_rows(engine) if row.action.startswith("account_")] == []

        with signed_in(gateway, "kepala") as boss:
            # A superadmin asking for an account that does not exist sees the very same page.
            missing = boss.http.get("/admin/accounts/0190a1b2-0000-7000-8000-000000000000")
            assert missing.status_code == 404 and NOT_FOUND in missing.text


def test_unlock_lets_a_locked_out_admin_sign_in_at_once(database_url: str) -> None:
    with admin_gateway(database_url, login_max_failures=3, lockout_minutes=60) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        rina = make(engine, "rina")
        with Browser(gateway) as guesser:
            for _ in range(3):
                assert guesser.login("rina", "not-the-password").status_code == 401
            assert guesser.login("rina").status_code == 401, "locked: even the right password is refused"

        with signed_in(gateway, "kepala") as boss:
            listing = boss.http.get("/admin/accounts")
            row = listing.text[listing.text.index(f'data-account="{rina.id}"') :]
            locked_cell = row[: row.index("</tr>")]
            assert "WIB</time>" in locked_cell
            page = boss.http.get(f"/admin/accounts/{rina.id}")
            assert "Dikunci sampai" in page.text and "Buka kunci sekarang" in page.text
            unlocked = boss.http.post(f"/admin/accounts/{rina.id}/unlock", data={"csrf_token": csrf_token_in(page)})
            assert unlocked.status_code == 303
            assert "Kunci dibuka" in boss.http.get(unlocked.headers["location"]).text

        with Browser(gateway) as rina_browser:
            assert rina_browser.login("rina").status_code == 303, "signs in at once, without waiting an hour"
        (row_audit,) = audit_rows(engine, AuditAction.ACCOUNT_UNLOCKED)
        assert row_audit.actor_name == "kepala" and row_audit.target_id == rina.id
        assert row_audit.detail is not None and row_audit.detail["username"] == "rina"
        assert row_audit.detail["locked_until"] is not None


def test_disabling_ends_the_live_session_and_refuses_sign_in(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        rina = make(engine, "rina")
        with signed_in(gateway, "rina") as rina_browser, signed_in(gateway, "kepala") as boss:
            assert rina_browser.http.get("/admin/queue").status_code == 200
            token = rina_browser.http.post("/api/v1/auth/token", data={"username": "rina", "password": PASSWORD})
            bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
            assert rina_browser.http.get("/api/v1/reports", headers=bearer).status_code == 200

            disabled = post_form(boss, f"/admin/accounts/{rina.id}/disable", {}, page=f"/admin/accounts/{rina.id}")
            assert disabled.status_code == 303
            page = boss.http.get(disabled.headers["location"])
            assert "Akun dinonaktifkan" in page.text and "Aktifkan kembali" in page.text
            assert sessions_of(engine, "rina") == 0

            next_page = rina_browser.http.get("/admin/queue")
            assert next_page.status_code == 303
            assert next_page.headers["location"].startswith("/admin/login")
            assert rina_browser.http.get("/api/v1/reports", headers=bearer).status_code == 401
            assert rina_browser.login("rina").status_code == 401

            enabled = post_form(boss, f"/admin/accounts/{rina.id}/enable", {}, page=f"/admin/accounts/{rina.id}")
            assert enabled.status_code == 303
            assert rina_browser.http.get("/api/v1/reports", headers=bearer).status_code == 401, "tokens stay ended"
            assert rina_browser.login("rina").status_code == 303, "enabled again, the same password works"

        actions = [(row.action, row.detail) for row in audit_rows(engine) if row.action.startswith("account_")]
        assert actions == [
            (AuditAction.ACCOUNT_DISABLED, {"username": "rina", "sessions_ended": 1, "tokens_ended": 1}),
            (AuditAction.ACCOUNT_ENABLED, {"username": "rina"}),
        ]


def test_a_new_password_ends_old_sessions_and_works(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        rina = make(engine, "rina")
        edit = f"/admin/accounts/{rina.id}"
        with signed_in(gateway, "rina") as rina_browser, signed_in(gateway, "kepala") as boss:
            mismatch = post_form(
                boss, f"{edit}/password", {"password": NEW_PASSWORD, "password_again": "something-else"}, page=edit
            )
            assert mismatch.status_code == 422 and "Kedua kata sandi berbeda" in _alert(mismatch)
            assert rina_browser.http.get("/admin/queue").status_code == 200, "a refused form changes nothing"

            changed = post_form(
                boss, f"{edit}/password", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}, page=edit
            )
            assert changed.status_code == 303
            assert "Kata sandi baru disimpan" in boss.http.get(changed.headers["location"]).text

            assert rina_browser.http.get("/admin/queue").status_code == 303, "the old session has ended"
            assert rina_browser.login("rina", PASSWORD).status_code == 401
            assert rina_browser.login("rina", NEW_PASSWORD).status_code == 303
            assert rina_browser.http.get("/admin/queue").status_code == 200

            # The superadmin's own password: their other browsers are signed out, this one stays.
            with signed_in(gateway, "kepala") as elsewhere:
                mine = f"/admin/accounts/{account(engine, 'kepala').id}"
                own = post_form(
                    boss, f"{mine}/password", {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}, page=mine
                )
                assert own.status_code == 303
                assert boss.http.get("/admin/accounts").status_code == 200
                assert elsewhere.http.get("/admin/accounts").status_code == 303

        rows = audit_rows(engine, AuditAction.ACCOUNT_PASSWORD_SET)
        assert [(r.target_id, r.detail) for r in rows] == [
            (rina.id, {"username": "rina", "sessions_ended": 1, "tokens_ended": 0}),
            (account(engine, "kepala").id, {"username": "kepala", "sessions_ended": 1, "tokens_ended": 0}),
        ]


def test_the_last_superadmin_cannot_disable_or_demote_themself(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        kepala = make(engine, "kepala", AdminRole.SUPERADMIN)
        mine = f"/admin/accounts/{kepala.id}"
        with signed_in(gateway, "kepala") as boss:
            disable = post_form(boss, f"{mine}/disable", {}, page=mine)
            assert disable.status_code == 409
            assert LAST_SUPERADMIN in _alert(disable)
            demote = post_form(
                boss, mine, {"role": "reviewer", "scope_channels": "*", "scope_wilayah": "", "language": "id"}
            )
            assert demote.status_code == 409
            assert LAST_SUPERADMIN in _alert(demote)
            assert '<option value="reviewer" selected>' in demote.text, "the form keeps what was chosen"
            stored = account(engine, "kepala")
            assert stored.role == AdminRole.SUPERADMIN and not stored.disabled
            assert boss.http.get("/admin/accounts").status_code == 200, "still signed in"

            # With a second superadmin, stepping down is allowed.
            make(engine, "wakil", AdminRole.SUPERADMIN)
            stepped_down = post_form(
                boss, mine, {"role": "reviewer", "scope_channels": "*", "scope_wilayah": "", "language": "id"}
            )
            assert stepped_down.status_code == 303
            assert account(engine, "kepala").role == AdminRole.REVIEWER
            assert boss.http.get("/admin/accounts").status_code == 404, "no longer a superadmin: the screen is gone"
        assert [row.action for row in audit_rows(engine) if row.action.startswith("account_")] == [
            AuditAction.ACCOUNT_CHANGED
        ]


def test_every_change_is_audited_without_a_password(database_url: str) -> None:
    with admin_gateway(database_url, login_max_failures=2) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        with signed_in(gateway, "kepala") as boss:
            assert (
                _new_account(boss, username="medsos", role="channel_admin", scope_channels="twitter:*").status_code
                == 303
            )
            medsos = account(engine, "medsos")
            edit = f"/admin/accounts/{medsos.id}"
            settings = {"role": "channel_admin", "scope_wilayah": "31.71", "language": "en"}
            saved = post_form(boss, edit, {**settings, "scope_channels": "twitter:*\ninstagram:governor"})
            assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
            again = post_form(boss, edit, {**settings, "scope_channels": "instagram:governor, twitter:*"})
            assert again.headers["location"].endswith("?done=unchanged"), "the same scope, in another order"
            with Browser(gateway) as guesser:
                for _ in range(2):
                    guesser.login("medsos", "not-the-password")
            for action in ("disable", "enable", "unlock"):
                assert post_form(boss, f"{edit}/{action}", {}, page=edit).status_code == 303
            password = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
            assert post_form(boss, f"{edit}/password", password, page=edit).status_code == 303

            trail = boss.http.get("/admin/audit", params={"actor": "kepala"})
            for label in ("Akun dibuat", "Akun diubah", "Akun dinonaktifkan", "Akun diaktifkan", "Kunci akun dibuka"):
                assert label in trail.text, label
            assert "Kata sandi akun diganti" in trail.text
            assert "instagram:governor" in trail.text, "the scope change is shown field by field"
            assert "before" not in trail.text, "not as raw JSON"

        rows = [row for row in audit_rows(engine) if row.action.startswith("account_")]
        assert [row.action for row in rows] == [
            AuditAction.ACCOUNT_CREATED,
            AuditAction.ACCOUNT_CHANGED,
            AuditAction.ACCOUNT_DISABLED,
            AuditAction.ACCOUNT_ENABLED,
            AuditAction.ACCOUNT_UNLOCKED,
            AuditAction.ACCOUNT_PASSWORD_SET,
        ]
        assert all(row.actor_name == "kepala" and row.target_id == medsos.id for row in rows)
        assert all(row.ip == "127.0.0.1" for row in rows)
        assert rows[1].detail == {
            "username": "medsos",
            "before": {"scope_channels": ["twitter:*"], "scope_wilayah": [], "language": "id"},
            "after": {
                "scope_channels": ["instagram:governor", "twitter:*"],
                "scope_wilayah": ["31.71"],
                "language": "en",
            },
        }
        stored_hash = account(engine, "medsos").password_hash
        written = json.dumps([row.detail for row in rows])
        for secret in (PASSWORD, NEW_PASSWORD, stored_hash, "$argon2"):
            assert secret not in written


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN)
        rina = make(engine, "rina")
        with signed_in(gateway, "kepala") as boss:
            page = boss.http.get(f"/admin/accounts/{rina.id}")
            assert page.text.count('name="csrf_token"') >= 4, "every form of the page carries the token"
            form = {
                "username": "penyusup",
                "role": "superadmin",
                "language": "id",
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD,
            }
            refusals = [
                boss.http.post("/admin/accounts/new", data=form),
                boss.http.post("/admin/accounts/new", data={**form, "csrf_token": "forged"}),
                boss.http.post(f"/admin/accounts/{rina.id}/disable"),
                boss.http.post(f"/admin/accounts/{rina.id}/password", data={"password": NEW_PASSWORD}),
            ]
            for refused in refusals:
                assert refused.status_code == 403, refused.request.url
                assert "Muat ulang halaman lalu coba lagi" in refused.text
        assert usernames(engine) == {"kepala", "rina"}
        assert not account(engine, "rina").disabled
        with Browser(gateway) as rina_browser:
            assert rina_browser.login("rina", PASSWORD).status_code == 303, "the password is unchanged"
        assert [row.action for row in audit_rows(engine) if row.action.startswith("account_")] == []


def test_markup_in_a_username_is_shown_as_text(database_url: str) -> None:
    with admin_gateway(database_url) as gateway:
        engine = gateway.runtime.engine
        make(engine, "kepala", AdminRole.SUPERADMIN, language="en")
        name = '<script>alert("x")</script>'
        with signed_in(gateway, "kepala") as boss:
            created = _new_account(boss, username=name, role="viewer")
            assert created.status_code == 303
            for path in ("/admin/accounts", created.headers["location"]):
                page = boss.http.get(path)
                assert "<script>alert" not in page.text
                assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
            listing = boss.http.get("/admin/accounts")
            assert "Admin accounts" in listing.text and "All reports" in listing.text  # in English
            refused = _new_account(boss, username="x", role="wilayah_admin", scope_wilayah='31.71"><b>')
            assert refused.status_code == 422
            assert '"><b>' not in refused.text and "&#34;&gt;&lt;b&gt;" in refused.text
        assert account(engine, name).role == AdminRole.VIEWER
