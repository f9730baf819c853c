from django.contrib import admin
from django.urls import reverse

from consents.models import Agreement


def test_an_agreement_key_is_read_only_once_created(admin_client):
    response = admin_client.post(
        reverse("admin:consents_agreement_add"),
        {"key": "alcohol", "title": "Alcohol offers", "channel": "email", "is_active": "on", "_save": "Save"},
    )
    assert response.status_code == 302
    agreement = Agreement.objects.get(key="alcohol")
    url = reverse("admin:consents_agreement_change", args=[agreement.pk])

    response = admin_client.post(
        url, {"key": "beer", "title": "Beer offers", "channel": "email", "is_active": "on", "_save": "Save"}
    )

    assert response.status_code == 302
    agreement.refresh_from_db()
    assert (agreement.key, agreement.title) == ("alcohol", "Beer offers")


def test_built_in_agreements_cannot_be_deleted(admin_client, admin_user, rf):
    built_in = Agreement.objects.filter(is_default=True).first()
    custom = Agreement.objects.create(key="alcohol", title="Alcohol offers")
    request = rf.get("/")
    request.user = admin_user
    agreement_admin = admin.site.get_model_admin(Agreement)

    refused = admin_client.post(reverse("admin:consents_agreement_delete", args=[built_in.pk]), {"post": "yes"})

    assert refused.status_code == 403
    assert Agreement.objects.filter(pk=built_in.pk).exists()
    assert agreement_admin.has_delete_permission(request, custom) is True
