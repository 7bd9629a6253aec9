import pytest
from django.conf import settings


def test_admin_login_page_loads(client):
    response = client.get(f"/{settings.ADMIN_URL}login/")

    assert response.status_code == 200
    assert b"csrfmiddlewaretoken" in response.content


@pytest.mark.django_db
def test_admin_index_loads_for_superuser(admin_client):
    response = admin_client.get(f"/{settings.ADMIN_URL}")

    assert response.status_code == 200
    assert b"Support console" in response.content


@pytest.mark.django_db
def test_admin_index_redirects_anonymous_to_login(client):
    response = client.get(f"/{settings.ADMIN_URL}")

    assert response.status_code == 302
    assert "/login/" in response["Location"]
