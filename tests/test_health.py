import pytest
from django.db import connection


@pytest.mark.django_db
def test_healthz_answers_200_when_database_reachable(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["database"] is True


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_when_database_unreachable(client):
    # Given a database that cannot be reached (a PostgreSQL port nobody listens on,
    # or an SQLite file in a directory that does not exist)
    original = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/db.sqlite3"
    else:
        connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.update(original)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] is False
