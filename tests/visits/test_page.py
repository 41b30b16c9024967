"""The visitor's page through their personal link: consent on the web, a selfie enrolled
like any photo with its outcome in plain words, declining; and the link's abuse: guessed,
expired, revoked, cancelled, rate-limited, used for another person, nothing disclosed."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client, TestCase, override_settings
from django.utils import timezone

from accounts.models import RetentionPolicy
from subjects.models import Consent, ConsentMethod, Photo, PhotoStatus, Subject, SubjectType
from tests.faces import portraits
from tests.faces.enrolled import upload_of
from tests.factories import SubjectFactory
from tests.visits.helpers import invite
from visits import services
from visits.models import Visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(tenant_a):
    return SubjectFactory(company=tenant_a.company, name="Lin Chih-ming", subject_type=SubjectType.EMPLOYEE)


@pytest.fixture
def invited(tenant_a, host):
    return invite(tenant_a, host=host, starts_at=timezone.now() + timedelta(minutes=30))


def url(token: str) -> str:
    return f"/visit/{token}/"


def page_text(response) -> str:
    return response.content.decode()


def post_at_commit(client, path, data):
    """A POST whose enrolment job runs at commit, in this process."""
    with override_settings(JOBS_INLINE=True), TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(path, data)


def consent(client, token, version=1):
    return client.post(url(token), {"action": "consent", "agree": "1", "policy_version": str(version)})


def test_the_visitor_agrees_takes_a_selfie_and_is_told_they_are_ready(tenant_a, invited, client):
    visit, token = invited
    first = client.get(url(token))
    text = page_text(first)
    assert first.status_code == 200
    assert tenant_a.company.name in text and "Lin Chih-ming" in text and "Mei Chen" in text
    policy = RetentionPolicy.objects.for_company(tenant_a.company).get()
    assert "version 1" in text and policy.text.split("\n")[0][:40] in text
    assert 'name="selfie"' not in text  # no photo before consent
    # The time is the company's (Asia/Taipei), not UTC.
    assert timezone.localtime(visit.starts_at, tenant_a.company.zone).strftime("%Y-%m-%d %H:%M") in text

    agreed = consent(client, token)
    assert agreed.status_code == 302
    recorded = Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert (recorded.method, recorded.policy.version, recorded.recorded_by) == (ConsentMethod.WEB, 1, None)
    assert "visitor link" in recorded.recorded_by_repr
    photo_step = page_text(client.get(url(token)))
    assert '<input type="file" name="selfie" accept="image/*" capture="user">' in photo_step

    sent = post_at_commit(client, url(token), {"action": "photo", "selfie": upload_of(portraits.grace_hopper())})
    assert sent.status_code == 302
    photo = Photo.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert photo.status == PhotoStatus.OK
    assert "You are all set" in page_text(client.get(url(token)))


def test_a_photo_without_a_face_is_explained_in_plain_words_in_both_languages(tenant_a, invited, client):
    visit, token = invited
    consent(client, token)
    post_at_commit(client, url(token), {"action": "photo", "photo": upload_of(portraits.landscape())})

    assert Photo.objects.for_company(tenant_a.company).get(subject=visit.visitor).reason == "no_face"
    assert "We could not find a face. Try again facing the camera" in page_text(client.get(url(token)))
    chinese = page_text(client.get(url(token) + "?lang=zh-hant"))
    assert "我們找不到臉部" in chinese and 'lang="zh-Hant"' in chinese
    # A better photo replaces it.
    post_at_commit(client, url(token), {"action": "photo", "selfie": upload_of(portraits.astronaut())})
    [photo] = Photo.objects.for_company(tenant_a.company).filter(subject=visit.visitor)
    assert photo.status == PhotoStatus.OK


def test_while_the_photo_is_checked_the_page_refreshes_itself(tenant_a, invited, client):
    visit, token = invited
    consent(client, token)
    with override_settings(JOBS_INLINE=False):
        client.post(url(token), {"action": "photo", "selfie": upload_of(portraits.astronaut())})
    assert Photo.objects.for_company(tenant_a.company).get(subject=visit.visitor).status == PhotoStatus.PENDING
    text = page_text(client.get(url(token)))
    assert '<meta http-equiv="refresh" content="3">' in text and "Checking your photo" in text


def test_a_file_that_is_not_a_picture_is_refused_and_nothing_is_stored(tenant_a, invited, client):
    _visit, token = invited
    consent(client, token)
    from django.core.files.uploadedfile import SimpleUploadedFile

    bad = SimpleUploadedFile("face.jpg", b"not an image at all", content_type="image/jpeg")
    answer = client.post(url(token), {"action": "photo", "selfie": bad})
    assert answer.status_code == 400
    assert "We could not read this picture" in page_text(answer)
    assert not Photo.objects.for_company(tenant_a.company).exists()


def test_the_visitor_may_decline_before_or_after_sending_a_photo(tenant_a, invited, client):
    visit, token = invited
    declined = client.post(url(token), {"action": "decline"})
    assert declined.status_code == 302
    assert "Reception will check you in" in page_text(client.get(declined["Location"]))
    assert not Consent.objects.for_company(tenant_a.company).filter(method=ConsentMethod.WEB).exists()

    consent(client, token)
    post_at_commit(client, url(token), {"action": "photo", "selfie": upload_of(portraits.astronaut())})
    client.post(url(token), {"action": "decline"})

    assert not Photo.objects.for_company(tenant_a.company).filter(subject=visit.visitor).exists()
    recorded = Consent.objects.for_company(tenant_a.company).get(subject=visit.visitor)
    assert recorded.withdrawn_at is not None


def test_consent_to_an_outdated_policy_is_refused_and_the_current_one_shown(tenant_a, invited, client):
    _visit, token = invited
    client.get(url(token))  # creates version 1
    RetentionPolicy.objects.create(company=tenant_a.company, version=2, text="Version two words.")

    answer = consent(client, token, version=1)

    assert answer.status_code == 400
    text = page_text(answer)
    assert "The policy has just changed" in text and "Version two words." in text
    assert not Consent.objects.for_company(tenant_a.company).filter(method=ConsentMethod.WEB).exists()


def test_without_ticking_the_box_nothing_is_recorded(tenant_a, invited, client):
    _visit, token = invited
    answer = client.post(url(token), {"action": "consent", "policy_version": "1"})
    assert answer.status_code == 400
    assert not Consent.objects.for_company(tenant_a.company).filter(method=ConsentMethod.WEB).exists()


def test_the_page_is_in_the_visits_language_with_a_switch(tenant_a, host, client):
    _visit, token = invite(tenant_a, host=host, language="zh-hant")
    text = page_text(client.get(url(token)))
    assert "<h1>您將拜訪 Company A</h1>" in text and '<a href="?lang=en"' in text
    assert "<h1>Your visit to Company A</h1>" in page_text(client.get(url(token) + "?lang=en"))


def decline_button(text: str) -> str:
    return re.search(r'<form method="post" class="decline">.*?<button[^>]*>(.*?)</button>', text, re.S)[1]


@pytest.mark.parametrize(
    ("language", "without_photo", "with_photo", "selfie"),
    [
        (
            "en",
            "I prefer not to use my face: reception will check me in",
            "I prefer not to use my face: delete my photo, reception will check me in",
            "Take a selfie",
        ),
        (
            "zh-hant",
            "我不想使用臉部辨識，請櫃檯為我報到",
            "我不想使用臉部辨識：請刪除我的照片，由櫃檯為我報到",
            "拍一張自拍照",
        ),
    ],
)
def test_deleting_a_photo_is_offered_only_once_there_is_one_and_the_selfie_is_named_once(
    tenant_a, invited, client, language, without_photo, with_photo, selfie
):
    _visit, token = invited
    consent(client, token)
    before = page_text(client.get(url(token) + f"?lang={language}"))
    assert decline_button(before) == without_photo
    assert "刪除" not in before and "delete" not in before.lower()
    # The step's heading and the camera's button no longer say the same words one above the other.
    assert before.count(selfie) == 1

    post_at_commit(client, url(token), {"action": "photo", "photo": upload_of(portraits.landscape())})  # rejected
    assert decline_button(page_text(client.get(url(token) + f"?lang={language}"))) == with_photo
    post_at_commit(client, url(token), {"action": "photo", "selfie": upload_of(portraits.grace_hopper())})
    assert decline_button(page_text(client.get(url(token) + f"?lang={language}"))) == with_photo


# --- Abuse --------------------------------------------------------------------------------


def dead_link_answer(client, path):
    response = client.get(path)
    return response.status_code, page_text(response)


def test_unknown_expired_revoked_and_cancelled_links_get_one_and_the_same_answer(tenant_a, host, client):
    _valid_visit, valid = invite(tenant_a, host=host)
    revoked_visit, revoked = invite(tenant_a, host=host, visitor_email="r@example.org")
    services.visit_link_revoke(company=tenant_a.company, actor=tenant_a.admin, visit=revoked_visit)
    cancelled_visit, cancelled = invite(tenant_a, host=host, visitor_email="c@example.org")
    services.visit_cancel(company=tenant_a.company, actor=tenant_a.admin, visit=cancelled_visit)
    expired_visit, expired = invite(tenant_a, host=host, visitor_email="e@example.org")
    Visit.objects.filter(pk=expired_visit.pk).update(
        starts_at=timezone.now() - timedelta(hours=3), ends_at=timezone.now() - timedelta(seconds=1)
    )
    guessed = valid[:-1] + ("A" if valid[-1] != "A" else "B")

    answers = {
        name: dead_link_answer(client, url(token))
        for name, token in [("unknown", guessed), ("revoked", revoked), ("cancelled", cancelled), ("expired", expired),
                            ("short", "abc"), ("long", valid + "x")]
    }  # fmt: skip
    assert {status for status, _ in answers.values()} == {404}
    assert len({body for _, body in answers.values()}) == 1
    assert client.get(url(valid)).status_code == 200
    # Acting through a dead link does nothing either.
    for token in (revoked, cancelled, expired):
        assert consent(client, token).status_code == 404
    assert not Consent.objects.for_company(tenant_a.company).filter(method=ConsentMethod.WEB).exists()


def test_a_link_acts_only_on_its_own_visitor_whatever_the_request_says(tenants, host, client):
    a, b = tenants
    visit, token = invite(a, host=host)
    other_visit, _ = invite(a, host=host, visitor_email="ana@example.org", visitor_name="Ana Wu")
    theirs = SubjectFactory(company=b.company, subject_type=SubjectType.VISITOR, consent=False)
    client.post(
        url(token),
        {"action": "consent", "agree": "1", "policy_version": "1", "subject": theirs.pk,
         "visitor": other_visit.visitor_id, "visit": other_visit.pk},
    )  # fmt: skip
    assert list(Consent.objects.filter(method=ConsentMethod.WEB).values_list("subject", flat=True)) == [
        visit.visitor_id
    ]
    post_at_commit(
        client,
        url(token),
        {"action": "photo", "selfie": upload_of(portraits.astronaut()), "subject": other_visit.visitor_id},
    )
    assert list(Photo.objects.values_list("subject", flat=True)) == [visit.visitor_id]


def test_a_link_whose_subject_is_no_longer_a_visitor_opens_nothing(tenant_a, host, client):
    visit, token = invite(tenant_a, host=host)
    Subject.objects.filter(pk=visit.visitor_id).update(subject_type=SubjectType.EMPLOYEE)
    assert client.get(url(token)).status_code == 404


def test_the_page_shows_nobody_but_the_visitor_and_the_hosts_name(tenant_a, host, client):
    _visit, token = invite(tenant_a, host=host, purpose="Secret project X")
    invite(tenant_a, host=host, visitor_email="ana@example.org", visitor_name="Ana Wu")
    colleague = SubjectFactory(company=tenant_a.company, name="Chang Wei")
    text = page_text(client.get(url(token)))
    for hidden in ("Ana Wu", "ana@example.org", colleague.name, host.email, host.job_number, tenant_a.admin.username,
                   tenant_a.admin.email, "Company B"):  # fmt: skip
        assert hidden not in text
    assert "Lin Chih-ming" in text


def test_the_page_leaks_its_link_nowhere_and_loads_nothing_from_elsewhere(invited, client):
    _visit, token = invited
    response = client.get(url(token))
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    text = page_text(response)
    assert "<script" not in text and " style=" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)


def test_requests_are_limited_per_link(settings, invited, host, tenant_a):
    settings.VISIT_LINK_LIMIT = 3
    _visit, token = invited
    _other, other_token = invite(tenant_a, host=host, visitor_email="ana@example.org")
    phone, laptop = Client(REMOTE_ADDR="10.6.0.1"), Client(REMOTE_ADDR="10.6.0.2")
    assert [phone.get(url(token)).status_code for _ in range(3)] == [200, 200, 200]
    refused = laptop.get(url(token))
    assert refused.status_code == 429 and refused["Retry-After"]
    assert phone.get(url(other_token)).status_code == 200  # another link is not affected


def test_requests_are_limited_per_client_address_whatever_the_token(settings, invited):
    settings.VISIT_LINK_CLIENT_LIMIT = 5
    _visit, token = invited
    guesser = Client(REMOTE_ADDR="10.6.1.1")
    statuses = [guesser.get(url(f"{n:043d}")).status_code for n in range(5)]
    assert statuses == [404] * 5
    # The real link from the guessing address is refused too, with the same answer as a wrong one.
    assert guesser.get(url(token)).status_code == 429
    assert guesser.get(url("0" * 43)).status_code == 429
    assert Client(REMOTE_ADDR="10.6.1.2").get(url(token)).status_code == 200
