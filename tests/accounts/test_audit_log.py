"""Who did what to which object of which company, when and from where."""

import datetime
import decimal
import json
import uuid

import pytest
from django.apps import apps

from accounts.models import AuditLog
from accounts.services import audit_record

pytestmark = pytest.mark.django_db


def test_a_write_records_actor_object_company_and_address(api, tenant_a):
    client = api(tenant_a.admin)
    created = client.post(
        "/api/v1/departments", {"name": "Ops"}, format="json", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="HR-tool/1.0"
    ).json()
    client.patch(f"/api/v1/departments/{created['id']}", {"name": "Operations"}, format="json")
    client.delete(f"/api/v1/departments/{created['id']}")
    entries = list(AuditLog.objects.for_company(tenant_a.company).order_by("id"))
    assert [e.action for e in entries] == ["department.create", "department.update", "department.delete"]
    first = entries[0]
    assert (first.actor, first.actor_repr, first.object_id) == (tenant_a.admin, "a-admin", str(created["id"]))
    assert (first.ip_address, first.user_agent) == ("198.51.100.7", "HR-tool/1.0")
    assert entries[1].changes == {"name": ["Ops", "Operations"]}


def test_the_audit_api_lists_newest_first_and_filters(api, tenant_a):
    client = api(tenant_a.owner)
    client.post("/api/v1/departments", {"name": "One"}, format="json")
    client.post("/api/v1/departments", {"name": "Two"}, format="json")
    rows = client.get("/api/v1/audit-log?action=department.create").json()["results"]
    assert [row["object_repr"] for row in rows] == ["Two", "One"]
    assert rows[0]["actor"] == "a-owner"


def test_the_audit_api_is_read_only(api, tenant_a):
    assert api(tenant_a.owner).post("/api/v1/audit-log", {"action": "forged"}, format="json").status_code == 405


def test_an_entry_outlives_its_actor(api, tenant_a):
    api(tenant_a.admin).post("/api/v1/departments", {"name": "Kept"}, format="json")
    tenant_a.admin.delete()
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="department.create")
    assert entry.actor is None and entry.actor_repr == "a-admin"


def _sample(field, instance):
    """A value of the Python type `field` holds, as a service would put it in `changes`."""
    from django.db.models.fields.files import FieldFile

    kind = field.get_internal_type()
    if field.many_to_many:
        return field.related_model.objects.none()
    if field.is_relation:
        return instance
    samples = {
        "DateTimeField": datetime.datetime(2026, 3, 1, 8, 30, tzinfo=datetime.UTC),
        "DateField": datetime.date(2026, 3, 1),
        "TimeField": datetime.time(8, 30),
        "DurationField": datetime.timedelta(minutes=5),
        "DecimalField": decimal.Decimal("1.50"),
        "UUIDField": uuid.UUID(int=7),
        "BinaryField": b"\x00\x01\x02",
        "JSONField": {"nested": [1, "two", None]},
        "FileField": FieldFile(instance, field, "photos/1/a.jpg") if hasattr(field, "storage") else None,
        "ImageField": FieldFile(instance, field, "photos/1/a.jpg") if hasattr(field, "storage") else None,
        "BooleanField": True,
        "FloatField": 0.93,
    }
    if kind in samples:
        return samples[kind]
    if field.choices:
        return field.choices[0][0]
    if kind.endswith("IntegerField") or kind.endswith("AutoField"):
        return 7
    return "text"


@pytest.mark.parametrize(
    "model", [m for m in apps.get_models() if m._meta.app_label in ("accounts", "subjects", "devices", "events")]
)
def test_the_audit_log_stores_a_change_of_every_field_of_every_model(tenant_a, model):
    changes = {}
    for field in model._meta.get_fields():
        if field.concrete or field.many_to_many:
            if field.auto_created and not field.concrete:
                continue
            changes[field.name] = [None, _sample(field, tenant_a.company)]
    entry = audit_record(company=tenant_a.company, actor=tenant_a.owner, action="test.all", changes=changes)
    entry.refresh_from_db()
    assert set(entry.changes) == set(changes)
    json.dumps(entry.changes)  # plain JSON all the way down
    by_kind = {field.get_internal_type(): entry.changes[field.name][1] for field in model._meta.concrete_fields}
    if "TimeField" in by_kind:
        assert by_kind["TimeField"] == "08:30:00"
    if "BinaryField" in by_kind:
        assert by_kind["BinaryField"] == "<3 bytes>"  # biometric bytes are never copied into the log


def test_an_owner_changes_the_working_hours_and_the_log_records_them(api, tenant_a):
    response = api(tenant_a.owner).patch("/api/v1/company", {"work_start": "08:30", "work_end": "17:45"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["work_start"], response.json()["work_end"]) == ("08:30:00", "17:45:00")
    tenant_a.company.refresh_from_db()
    assert tenant_a.company.work_start == datetime.time(8, 30)
    entry = AuditLog.objects.for_company(tenant_a.company).get(action="company.update")
    assert entry.changes["work_start"][1] == "08:30:00"
    assert entry.changes["work_end"][1] == "17:45:00"


def test_the_admin_reads_the_log_in_the_users_language(client, tenant_a):
    """Codes stay codes in the database; the page says them in words, the product's own
    actors too, and keeps its bookkeeping (the once key) to itself."""
    from django.utils import translation

    from accounts.audit_words import actor_label, audit_action_label

    company = tenant_a.company
    erased = audit_record(company=company, actor=None, action="subject.erase")
    AuditLog.objects.create(
        company=company, actor_repr="live page", action="biometrics.view", once_key="secret-hour-key"
    )
    tenant_a.owner.language = "zh-hant"
    tenant_a.owner.save(update_fields=["language"])
    client.force_login(tenant_a.owner)
    listed = client.get("/admin/accounts/auditlog/").content.decode()
    detail = client.get(f"/admin/accounts/auditlog/{erased.pk}/change/").content.decode()
    with translation.override("zh-hant"):
        words = [actor_label("system"), actor_label("live page"), audit_action_label("subject.erase")]
        words.append(audit_action_label("biometrics.view"))
    for word in words:
        assert word in listed
    assert ">subject.erase<" not in listed and ">biometrics.view<" not in listed  # links may carry codes
    assert words[0] in detail and words[2] in detail
    assert (
        "secret-hour-key"
        not in client.get(
            f"/admin/accounts/auditlog/{AuditLog.objects.get(once_key='secret-hour-key').pk}/change/"
        ).content.decode()
    )


def test_an_entrys_page_names_it_in_words_with_the_languages_own_colon(client, tenant_a):
    """The title, the action and each change read in the page's language: no stored code in
    the heading, "TV box" not "Tv box", and a full-width colon only in Chinese."""
    entry = audit_record(
        company=tenant_a.company, actor=tenant_a.owner, action="tvbox.update", obj=tenant_a.owner,
        changes={"language": ["", "zh-hant"]},
    )  # fmt: skip
    client.force_login(tenant_a.owner)

    english = client.get(f"/admin/accounts/auditlog/{entry.pk}/change/").content.decode()
    assert "TV box · changed" in english and "Tv box" not in english
    assert "<h2>a-owner · TV box · changed · a-owner</h2>" in english and "tvbox.update" not in english
    assert '<li><span class="audit-field">Language:</span>— → 繁體中文</li>' in english and "：" not in english

    tenant_a.owner.language = "zh-hant"
    tenant_a.owner.save(update_fields=["language"])
    chinese = client.get(f"/admin/accounts/auditlog/{entry.pk}/change/").content.decode()
    assert '<li><span class="audit-field">語言：</span>— → 繁體中文</li>' in chinese and "tvbox.update" not in chinese


def test_a_page_a_role_may_not_open_says_so_in_the_users_language(client, tenant_a):
    client.force_login(tenant_a.viewer)
    english = client.get("/admin/integrations/webhookendpoint/")
    assert english.status_code == 403 and "Your role does not allow you to open this page." in english.content.decode()
    tenant_a.viewer.language = "zh-hant"
    tenant_a.viewer.save(update_fields=["language"])
    chinese = client.get("/admin/integrations/webhookendpoint/")
    assert chinese.status_code == 403 and "您的角色無法開啟此頁面。" in chinese.content.decode()


# The models whose English plural does not end in "s".
IRREGULAR_PLURALS = {"events.UnknownPerson"}


def test_every_model_of_the_product_names_its_plural():
    """Django's default plural only adds an "s" ("audit log entrys"), and a plural copied from
    the singular reads "21 audit log" under an admin list: every model says its own."""
    from django.conf import settings
    from django.utils import translation

    ours = settings.INSTALLED_APPS[settings.INSTALLED_APPS.index("accounts") :]
    for model in apps.get_models():
        meta = model._meta
        if meta.app_config.name not in ours:
            continue
        label = f"{meta.app_label}.{model.__name__}"
        assert "verbose_name_plural" in meta.original_attrs, label
        with translation.override("en"):  # Chinese has no plural
            plural = str(meta.verbose_name_plural)
        assert plural.endswith("s") or label in IRREGULAR_PLURALS, label


def test_the_admin_list_counts_audit_entries_in_the_plural(client, tenant_a):
    for action in ("subject.create", "subject.update"):
        audit_record(company=tenant_a.company, actor=tenant_a.owner, action=action)
    client.force_login(tenant_a.owner)
    count = AuditLog.objects.for_company(tenant_a.company).count()
    english = client.get("/admin/accounts/auditlog/").content.decode()
    assert f"{count} audit log entries" in english and f"{count} audit log<" not in english
