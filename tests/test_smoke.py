import pytest
from django.contrib.auth.models import User

from django_google_idtoken.models import LinkedAccount

pytestmark = pytest.mark.django_db


def test_signin_creates_user_and_session(client, issuer, key_server):
    token = issuer.mint(sub="111", email="ada@gmail.com")
    response = client.post("/auth/google/signin/", {"id_token": token}, content_type="application/json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["created"] is True
    assert body["account"]["sub"] == "111"
    assert User.objects.get().email == "ada@gmail.com"
    assert LinkedAccount.objects.get().sub == "111"
    me = client.get("/auth/google/me/")
    assert me.status_code == 200
    assert me.json()["email"] == "ada@gmail.com"
    assert key_server.fetches == 1
