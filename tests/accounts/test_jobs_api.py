"""The company's background jobs, read-only, with their progress."""

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import JobState
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_the_jobs_api_lists_the_companys_jobs_newest_first_with_progress(api, tenant_a, tenant_b):
    older = JobFactory(company=tenant_a.company, kind="subjects.reenrol", state=JobState.DONE, done=4, total=4)
    newer = JobFactory(
        company=tenant_a.company,
        kind="subjects.reenrol",
        state=JobState.RUNNING,
        done=1,
        total=3,
        started_by=tenant_a.admin,
    )
    JobFactory(company=tenant_b.company, kind="theirs")
    rows = api(tenant_a.viewer).get("/api/v1/jobs").json()["results"]
    assert [row["id"] for row in rows] == [newer.pk, older.pk]
    assert {k: rows[0][k] for k in ("state", "done", "total", "percent", "started_by")} == {
        "state": "running", "done": 1, "total": 3, "percent": 33, "started_by": "a-admin"
    }  # fmt: skip
    assert rows[1]["percent"] == 100 and rows[1]["started_by"] is None


def test_the_jobs_api_filters_by_state_and_shows_one_job(api, tenant_a):
    failed = JobFactory(company=tenant_a.company, state=JobState.FAILED, error="RuntimeError: broke")
    JobFactory(company=tenant_a.company, state=JobState.DONE)
    client = api(tenant_a.viewer)
    assert [row["id"] for row in client.get("/api/v1/jobs?state=failed").json()["results"]] == [failed.pk]
    assert client.get(f"/api/v1/jobs/{failed.pk}").json()["error"] == "RuntimeError: broke"
    bad = client.get("/api/v1/jobs?state=exploded")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"


def test_the_jobs_api_is_read_only(api, tenant_a):
    job = JobFactory(company=tenant_a.company)
    client = api(tenant_a.owner)
    assert client.post("/api/v1/jobs", {"kind": "forged"}, format="json").status_code == 405
    assert client.patch(f"/api/v1/jobs/{job.pk}", {"state": "done"}, format="json").status_code == 405
    assert client.delete(f"/api/v1/jobs/{job.pk}").status_code == 405


def test_the_jobs_list_costs_the_same_queries_for_5_or_50_jobs(api, tenant_a):
    client = api(tenant_a.viewer)

    def count_for(total):
        JobFactory.create_batch(total - 5 if total > 5 else 5, company=tenant_a.company, started_by=tenant_a.admin)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/v1/jobs?page_size=100").status_code == 200
        return len(queries)

    # user (+company), count, page of jobs (+started_by)
    few, many = count_for(5), count_for(50)
    assert few == many == 3


def test_the_schema_lists_the_kinds_of_job_with_their_names(tmp_path):
    # A generated client knows every value `kind` takes, and what each one is.
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    kinds = ["photos.bulk_upload", "photos.reenrol", "privacy.purge", "subjects.import", "subjects.import_preview"]
    enum = schema["components"]["schemas"]["JobKindEnum"]
    assert enum["enum"] == kinds
    assert "* `photos.reenrol` - Re-enrolment of every photo" in enum["description"]
    assert schema["components"]["schemas"]["Job"]["properties"]["kind"]["allOf"] == [
        {"$ref": "#/components/schemas/JobKindEnum"}
    ]
    [parameter] = [p for p in schema["paths"]["/api/v1/jobs"]["get"]["parameters"] if p["name"] == "kind"]
    assert parameter["schema"]["enum"] == kinds


def test_the_jobs_api_filters_by_kind_and_refuses_an_unknown_one(api, tenant_a):
    reenrol = JobFactory(company=tenant_a.company, kind="photos.reenrol")
    JobFactory(company=tenant_a.company, kind="subjects.import")
    client = api(tenant_a.viewer)
    rows = client.get("/api/v1/jobs?kind=photos.reenrol").json()["results"]
    assert [(row["id"], row["kind"]) for row in rows] == [(reenrol.pk, "photos.reenrol")]
    bad = client.get("/api/v1/jobs?kind=photos.exploded")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
