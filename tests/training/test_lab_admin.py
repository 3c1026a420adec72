"""Staff set quotas per group and per user in the admin and see GPU-hours per user and week
(a table and a chart); students never reach it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from tests.training.lab_helpers import WEDNESDAY_NOON, WEEK_START, run_that_trained
from training.models import Quota

USAGE = "admin:training_quota_usage"


@pytest.fixture(autouse=True)
def wednesday(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: WEDNESDAY_NOON)


def test_the_quota_list_explains_the_rules_and_links_the_usage(staff_client, student):
    Quota.objects.create(user=student, weekly_gpu_hours=5, note="thesis sprint")
    page = staff_client.get(reverse("admin:training_quota_changelist")).content.decode()
    assert "Empty: inherit; 0: no limit. Staff have no limits." in page
    assert reverse(USAGE) in page
    assert "user alice" in page and "thesis sprint" in page


def test_staff_add_a_group_quota(staff_client):
    group = Group.objects.create(name="year 1")
    response = staff_client.post(
        reverse("admin:training_quota_add"),
        {"group": group.pk, "weekly_gpu_hours": "4.5", "max_active_runs": "1",
         "max_resolution": "768", "max_epochs": "", "max_steps": "", "note": ""},
    )  # fmt: skip
    assert response.status_code == 302
    quota = Quota.objects.get()
    assert (quota.group, quota.weekly_gpu_hours, quota.max_resolution) == (group, 4.5, 768)
    assert quota.max_epochs is None


@pytest.mark.parametrize("both", [True, False])
def test_a_quota_is_for_one_group_or_one_user(staff_client, student, both):
    group = Group.objects.create(name="year 1")
    data = {"weekly_gpu_hours": "2", "note": ""}
    if both:
        data.update(group=group.pk, user=student.pk)
    response = staff_client.post(reverse("admin:training_quota_add"), data)
    assert response.status_code == 200
    assert "A quota is for one group or for one user: choose one." in response.content.decode()
    assert not Quota.objects.exists()


def test_a_negative_number_of_hours_is_refused(staff_client, student):
    response = staff_client.post(
        reverse("admin:training_quota_add"), {"user": student.pk, "weekly_gpu_hours": "-1"}
    )
    assert response.status_code == 200 and not Quota.objects.exists()


def test_usage_per_user_and_week_as_a_table_and_a_chart(
    settings, staff_client, student, other_student
):
    settings.LORASTUDIO_WEEKLY_GPU_HOURS = 10
    Quota.objects.create(user=other_student, weekly_gpu_hours=0)
    run_that_trained(student, WEEK_START + timedelta(hours=1), WEEK_START + timedelta(hours=3))
    last_week = WEEK_START - timedelta(days=3)
    run_that_trained(student, last_week, last_week + timedelta(hours=3))
    run_that_trained(other_student, WEDNESDAY_NOON - timedelta(hours=1), None)  # still running
    page = staff_client.get(reverse(USAGE), {"weeks": "2"}).content.decode()
    assert "<th>Week of 16 Nov</th><th>Week of 09 Nov</th>" in page
    table = page[page.index('id="usage-table"') :]
    alice = table[table.index("<td>alice</td>") : table.index("</tr>", table.index("alice"))]
    assert "10 h" in alice and "the lab&#x27;s default" in alice and "8.00 h" in alice
    assert "<td>2.00<" in alice and "<td>3.00<" in alice
    bob = table[table.index("<td>bob</td>") : table.index("</tr>", table.index("<td>bob"))]
    assert "no limit" in bob and "<td>1.00<" in bob
    assert "<th>3.00</th><th>3.00</th>" in table  # the lab's totals per week
    start = page.index('id="usage-chart"')
    chart = page[start : page.index("</svg>", start)]
    assert chart.count("<rect") == 2
    assert "Week of 16 Nov: 3.00 GPU-hours" in chart


def test_usage_with_a_bad_number_of_weeks_says_so(staff_client):
    response = staff_client.get(reverse(USAGE), {"weeks": "99"})
    assert response.status_code == 200
    assert "Weeks is a whole number from 1 to 52." in response.content.decode()


def test_students_never_reach_quotas_or_usage(student_client):
    for url in (reverse(USAGE), reverse("admin:training_quota_changelist")):
        response = student_client.get(url)
        assert response.status_code == 302 and response["Location"] == reverse("home")
