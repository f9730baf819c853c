"""avatarUrl must point to a public host: loopback, private, link-local (cloud metadata) and local-network
addresses are refused with a 400 naming avatarUrl (per item where the surface reports per item), decided without
DNS by the outbound targets' address rules. The vendor surfaces (ExpertSender, Capillary) carry no avatarUrl."""

import pytest

from crm.outbound import host_public_without_dns
from profiles.models import Profile
from profiles.services.batch import profiles_batch_run

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1/a.png",
    "http://[::1]/",
    "http://10.0.0.1/a.png",
    "http://192.168.1.1:8080/a.png",
    "http://localhost/a.png",
    "http://LOCALHOST./a.png",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/a.png",
    "http://2130706433/a.png",  # 127.0.0.1 as browsers read a number
    "http://0x7f.1/a.png",
    "http://[::ffff:127.0.0.1]/a.png",
    "http://[fe80::1]/a.png",
    "http://intranet/a.png",
]


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("169.254.169.254", False),
        ("::1", False),
        ("[::1]", False),
        ("10.0.0.1", False),
        ("127.1", False),
        ("2130706433", False),
        ("1.2.3.999", False),
        ("foo.localhost", False),
        ("", False),
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("img.example.com", True),
    ],
)
def test_hosts_are_judged_without_dns(host, public):
    assert host_public_without_dns(host) is public


@pytest.mark.django_db
@pytest.mark.parametrize("url", REFUSED)
def test_a_single_write_refuses_a_private_avatar_url(api, url):
    response = api.post("/v4/clients", {"email": "av@example.com", "avatarUrl": url}, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == "avatarUrl" and "public host" in body["message"]
    assert not Profile.objects.filter(email="av@example.com").exists()


@pytest.mark.django_db
def test_an_update_refuses_a_private_avatar_url_and_keeps_the_old_one(api):
    url = "https://img.example.com/a.png"
    assert api.post("/v4/clients", {"email": "av@example.com", "avatarUrl": url}, format="json").status_code == 202
    response = api.post("/v4/clients", {"email": "av@example.com", "avatarUrl": REFUSED[0]}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "avatarUrl"
    assert Profile.objects.get(email="av@example.com").avatar_url == url


@pytest.mark.django_db
def test_a_batch_reports_a_private_avatar_url_on_its_item(api, django_capture_on_commit_callbacks):
    items = [
        {"email": "ok@example.com", "avatarUrl": "https://img.example.com/a.png"},
        {"email": "meta@example.com", "avatarUrl": "http://169.254.169.254/latest/meta-data/"},
    ]
    with django_capture_on_commit_callbacks(execute=False):
        response = api.post("/v4/clients/batch", items, format="json")
    assert response.status_code == 202
    job = profiles_batch_run(job_id=response.json()["jobId"])
    assert job.counts["created"] == 1 and job.counts["failed"] == 1
    [error] = job.errors
    assert (error["index"], error["field"]) == (1, "avatarUrl")
    assert list(Profile.objects.values_list("email", flat=True)) == ["ok@example.com"]
