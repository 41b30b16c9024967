"""Traditional Chinese: the catalogue is complete, and each request gets the right language.

The browser's Accept-Language picks the language; a user's own `language` setting wins
over it, both in the admin (session) and in the API (JWT). Expected texts are read from the
catalogue with `override("zh-hant")`, so a rewording of a translation does not break these
tests, but a missing or unused catalogue does.
"""

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.utils import translation
from django.utils.translation import gettext as _

from kangaroo import errors
from kangaroo.errors import REGISTRY

pytestmark = pytest.mark.django_db

LOCALE_DIR = Path(settings.BASE_DIR) / "locale" / "zh_Hant" / "LC_MESSAGES"
PO_FILE = LOCALE_DIR / "django.po"
MO_FILE = LOCALE_DIR / "django.mo"
CJK = re.compile(r"[\u4e00-\u9fff]")
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|\{\{\s*\w+\s*\}\}")


@pytest.fixture(autouse=True)
def _english_afterwards():
    """A request's translation.activate() must not leak into the next test."""
    yield
    translation.deactivate()


def chinese(message) -> str:
    with translation.override("zh-hant"):
        return str(message)


def english(message) -> str:
    with translation.override("en"):
        return str(message)


def error_of(response) -> dict:
    return response.json()["error"]


# --- The catalogue ------------------------------------------------------------------------


ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(chunks: list[str]) -> str:
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), "".join(chunks))


def po_entries() -> list[dict]:
    """Every entry of the .po: its flags, msgid and msgstr (continuation lines joined)."""
    entries = []
    for block in PO_FILE.read_text(encoding="utf-8").split("\n\n"):
        flags: set[str] = set()
        parts: dict[str, list[str]] = {}
        current = None
        obsolete = False
        for line in block.splitlines():
            if line.startswith("#~"):
                obsolete = True
            elif line.startswith("#,"):
                flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith("#"):
                continue
            elif match := re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line):
                current = match.group(1)
                parts[current] = [match.group(2)]
            elif match := re.match(r'^"(.*)"$', line):
                assert current is not None, f"continuation line without a keyword in {PO_FILE}: {line!r}"
                parts[current].append(match.group(1))
        if "msgid" in parts or obsolete:
            entries.append(
                {
                    "flags": flags,
                    "obsolete": obsolete,
                    "msgid": _unquote(parts.get("msgid", [])),
                    "msgstrs": [_unquote(value) for key, value in parts.items() if key.startswith("msgstr")],
                }
            )
    return entries


def translated_entries() -> list[dict]:
    return [entry for entry in po_entries() if entry["msgid"] and not entry["obsolete"]]


def test_the_catalogue_has_many_entries():
    # A parser that silently found nothing would make the checks below pass vacuously.
    entries = translated_entries()
    assert len(entries) > 50
    assert any(entry["msgid"] == "Authentication credentials were not provided." for entry in entries)


def test_every_msgid_has_a_translation_and_nothing_is_fuzzy_or_obsolete():
    entries = po_entries()
    assert [e["msgid"] for e in entries if "fuzzy" in e["flags"]] == []
    assert [e["msgid"] for e in entries if e["obsolete"]] == []
    untranslated = [e["msgid"] for e in translated_entries() if not all(s.strip() for s in e["msgstrs"])]
    assert untranslated == []


def test_every_translation_keeps_the_placeholders_of_its_msgid():
    for entry in translated_entries():
        for msgstr in entry["msgstrs"]:
            assert sorted(PLACEHOLDER.findall(msgstr)) == sorted(PLACEHOLDER.findall(entry["msgid"])), entry["msgid"]


def test_translations_are_chinese_except_the_product_name():
    not_chinese = [e["msgid"] for e in translated_entries() if not all(CJK.search(s) for s in e["msgstrs"])]
    assert not_chinese == ["Kangaroo"]  # the brand stays as it is


def test_the_committed_mo_matches_the_po():
    """A fresh machine may lack gettext, so the compiled catalogue is committed: keep it current."""
    with MO_FILE.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [e["msgid"] for e in translated_entries() if compiled.gettext(e["msgid"]) != e["msgstrs"][0]]
    assert stale == [], "run `manage.py compilemessages` after editing the .po"


def test_every_error_code_has_a_chinese_message():
    missing = [code for code, error in REGISTRY.items() if chinese(error.message) == english(error.message)]
    assert missing == []
    assert all(CJK.search(chinese(error.message)) for error in REGISTRY.values())


# Every action code the product writes into the audit log: `action="x.y"`, the bulk entries'
# `("x.y", obj, changes)`, `PURGE_ACTION = "x.y"`, and the devices' `f"{device.kind}.y"`.
_ACTION_CODE = re.compile(
    r"""(?:action\s*=\s*|ACTION\s*=\s*|\(\s*(?="[a-z_.]+",\s*\w+,))f?"(\{device\.kind\}|[a-z_]+)\.([a-z_]+)"(?=\s*[,)\n])"""
)
_APP_DIRS = ["accounts", "devices", "events", "faces", "integrations", "privacy", "subjects", "visits", "kangaroo"]


def written_action_codes() -> set[str]:
    from devices.models import DeviceKind

    codes = set()
    for app in _APP_DIRS:
        for path in (Path(settings.BASE_DIR) / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for what, verb in _ACTION_CODE.findall(path.read_text()):
                kinds = DeviceKind.values if what == "{device.kind}" else [what]
                codes |= {f"{kind}.{verb}" for kind in kinds}
    return codes


def test_every_audit_action_the_product_writes_reads_as_chinese_words():
    from accounts.audit_words import audit_action_label

    codes = written_action_codes()
    assert {"subject.erase", "biometrics.view", "privacy.purge", "photo.add", "tvbox.key_revoke"} <= codes
    with translation.override("zh-hant"):
        unlabelled = sorted(code for code in codes if audit_action_label(code) == code)
        english_left = sorted(code for code in codes if not CJK.search(audit_action_label(code)))
    assert unlabelled == []
    assert english_left == []


def test_the_products_own_actors_read_as_words_and_users_as_their_names():
    from accounts.audit_words import actor_label

    with translation.override("zh-hant"):
        assert CJK.search(actor_label("system"))
        assert CJK.search(actor_label("live page"))
        assert "42" in actor_label("visitor link (visit 42)") and CJK.search(actor_label("visitor link (visit 42)"))
        assert actor_label("system.admin") == "system.admin"
        assert actor_label("visitor link (visit 42) and more") == "visitor link (visit 42) and more"


# --- The API: browser language ------------------------------------------------------------


def test_an_anonymous_api_request_is_answered_in_the_browsers_chinese(client):
    response = client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="zh-Hant")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "not_authenticated"
    expected = chinese(errors.NOT_AUTHENTICATED.message)
    assert expected != "Authentication credentials were not provided."
    assert error["message"] == expected
    assert response["Content-Language"] == "zh-hant"


def test_an_anonymous_api_request_is_answered_in_the_browsers_english(client):
    response = client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "not_authenticated"
    assert error["message"] == "Authentication credentials were not provided."
    assert response["Content-Language"] == "en"


def test_a_taiwanese_browser_locale_also_gets_traditional_chinese(client):
    response = client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="zh-TW,zh;q=0.9,en;q=0.5")
    assert error_of(response)["message"] == chinese(errors.NOT_AUTHENTICATED.message)


# --- The user's own setting wins over the browser -----------------------------------------


def test_a_users_chinese_setting_wins_over_an_english_browser_in_the_api(tenants, api):
    user = tenants[0].admin
    user.language = "zh-hant"
    user.save(update_fields=["language"])
    response = api(user).get("/api/v1/departments/999999", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    expected = chinese(errors.NOT_FOUND.message)
    assert expected != "Not found."
    assert error["message"] == expected


def test_a_users_english_setting_wins_over_a_chinese_browser_in_the_api(tenants, api):
    user = tenants[0].admin
    user.language = "en"
    user.save(update_fields=["language"])
    response = api(user).get("/api/v1/departments/999999", HTTP_ACCEPT_LANGUAGE="zh-Hant")
    assert response.status_code == 404
    assert error_of(response)["message"] == "Not found."


def test_without_a_setting_the_api_follows_the_browser(tenants, api):
    user = tenants[0].admin
    assert user.language == ""
    response = api(user).get("/api/v1/departments/999999", HTTP_ACCEPT_LANGUAGE="zh-Hant")
    assert error_of(response)["message"] == chinese(errors.NOT_FOUND.message) != "Not found."


def test_a_users_chinese_setting_wins_over_an_english_browser_in_the_admin(tenants, client):
    user = tenants[0].owner
    user.language = "zh-hant"
    user.save(update_fields=["language"])
    client.force_login(user)
    response = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    with translation.override("zh-hant"):
        header, index_title = _("Kangaroo administration"), _("Front door and attendance")
    assert header != "Kangaroo administration"
    assert index_title != "Front door and attendance"
    assert header in page
    assert index_title in page
    assert "Front door and attendance" not in page
    assert 'lang="zh-hant"' in page


def test_the_admin_follows_an_english_browser_without_a_setting(tenants, client):
    client.force_login(tenants[0].owner)
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Kangaroo administration" in page
    assert "Front door and attendance" in page


# --- E-mail -------------------------------------------------------------------------------


def test_the_password_reset_email_is_chinese_for_a_chinese_browser(tenants, client):
    owner = tenants[0].owner
    response = client.post("/admin/password_reset/", {"email": owner.email}, HTTP_ACCEPT_LANGUAGE="zh-Hant")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [owner.email]
    with translation.override("zh-hant"):
        subject = _("Reset your %(product)s password") % {"product": "Kangaroo"}
        greeting = _("Hello %(name)s,") % {"name": owner.username}
    assert subject != "Reset your Kangaroo password"
    assert message.subject == subject
    assert greeting in message.body
    html = next(content for content, mimetype in message.alternatives if mimetype == "text/html")
    assert subject in html


def test_the_password_reset_email_is_english_for_an_english_browser(tenants, client):
    owner = tenants[0].owner
    client.post("/admin/password_reset/", {"email": owner.email}, HTTP_ACCEPT_LANGUAGE="en")
    assert mail.outbox[0].subject == "Reset your Kangaroo password"
