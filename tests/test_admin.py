"""The linked-account admin and the inline on the User admin page, through the
test client as a superuser (and as a support user with two permissions)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from django_google_idtoken.models import LinkedAccount

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/django_google_idtoken/linkedaccount/"


@pytest.fixture
def accounts() -> dict[str, LinkedAccount]:
    user_model = get_user_model()
    ada = user_model.objects.create_user("ada", "ada@analytical.org")
    bob = user_model.objects.create_user("bob", "bob@builder.net")
    carol = user_model.objects.create_user("carol", "carol@example.com")
    return {
        "ada": LinkedAccount.objects.create(
            user=ada,
            provider="google",
            sub="111111111111111111111",
            email="ada@gmail.com",
            email_verified=True,
        ),
        "bob": LinkedAccount.objects.create(
            user=bob,
            provider="google",
            sub="222222222222222222222",
            email="bob@corp.example",
            email_verified=True,
            hosted_domain="corp.example",
        ),
        "carol": LinkedAccount.objects.create(
            user=carol,
            provider="nowgg",
            sub="333333333333333333333",
            email="carol@corp.example",
            email_verified=False,
            hosted_domain="corp.example",
        ),
    }


def listed(response: Any) -> set[int]:
    assert response.status_code == 200, response.content[:500]
    return {account.pk for account in response.context["cl"].result_list}


def pks(accounts: dict[str, LinkedAccount], *names: str) -> set[int]:
    return {accounts[name].pk for name in names}


def test_changelist_columns(admin_client, accounts):
    response = admin_client.get(CHANGELIST)

    assert listed(response) == pks(accounts, "ada", "bob", "carol")
    html = response.content.decode()
    columns = re.findall(r'<th scope="col" class="[^"]*\bcolumn-(\w+)', html)
    assert columns == [
        "user",
        "provider",
        "email",
        "hosted_domain",
        "created_at",
        "last_signed_in_at",
    ]
    for title in ("User", "Provider", "Email", "Hosted domain", "Created", "Last sign-in"):
        assert f">{title}</a>" in html
    # A row shows the user and the snapshot.
    bob = accounts["bob"].pk
    assert re.search(
        rf'<th class="field-user[^"]*"><a href="{CHANGELIST}{bob}/change/">bob</a>', html
    )
    assert '<td class="field-email">bob@corp.example</td>' in html
    assert '<td class="field-hosted_domain">corp.example</td>' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ada@gmail.com", {"ada"}),
        ("corp.example", {"bob", "carol"}),  # the snapshot email
        ("222222222222222222222", {"bob"}),  # sub, exactly
        ("2222222222", set()),  # ...not a part of it
        ("carol", {"carol"}),  # the user's username
        ("analytical.org", {"ada"}),  # the user's own email
        ("builder", {"bob"}),
        ("nobody", set()),
    ],
)
def test_search(admin_client, accounts, query, expected):
    response = admin_client.get(CHANGELIST, {"q": query})
    assert listed(response) == pks(accounts, *expected)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider": "google"}, {"ada", "bob"}),
        ({"provider": "nowgg"}, {"carol"}),
        ({"hosted_domain": "corp.example"}, {"bob", "carol"}),
        ({"email_verified__exact": "1"}, {"ada", "bob"}),
        ({"email_verified__exact": "0"}, {"carol"}),
        ({"provider": "google", "hosted_domain": "corp.example"}, {"bob"}),
    ],
)
def test_filters(admin_client, accounts, params, expected):
    response = admin_client.get(CHANGELIST, params)
    assert listed(response) == pks(accounts, *expected)


def test_filters_are_offered(admin_client, accounts):
    response = admin_client.get(CHANGELIST)
    titles = [spec.title for spec in response.context["cl"].filter_specs]
    assert [str(title) for title in titles] == ["provider", "hosted domain", "email verified"]


def test_change_page_shows_user_and_sub_read_only(admin_client, accounts):
    account = accounts["ada"]
    response = admin_client.get(f"{CHANGELIST}{account.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<div class="readonly">{account.sub}</div>' in html
    assert 'name="sub"' not in html
    # The user is shown (a link to it), never an input.
    assert re.search(r'<div class="readonly"><a href="/admin/auth/user/\d+/change/">ada</a>', html)
    assert 'name="user"' not in html
    assert "vForeignKeyRawIdAdminField" not in html


def test_change_page_cannot_change_the_user_or_the_sub(admin_client, accounts):
    # Editing sub would hand this user someone else's Google account, and
    # editing user would hand this Google account to someone else: a crafted
    # POST must not do either, even a superuser's.
    account = accounts["ada"]
    ada, bob = account.user, accounts["bob"].user
    response = admin_client.post(
        f"{CHANGELIST}{account.pk}/change/",
        {"user": bob.pk, "sub": "999", "provider": "evil", "email": "x@evil.example"},
    )

    assert response.status_code == 302, response.content[:2000]
    account = LinkedAccount.objects.get(pk=account.pk)
    assert account.user_id == ada.pk != bob.pk
    assert account.sub == "111111111111111111111"
    assert account.provider == "google"
    assert account.email == "ada@gmail.com"


@pytest.fixture
def support_client(client: Client) -> Client:
    """A staff user holding exactly view_linkedaccount and change_linkedaccount."""
    support = get_user_model().objects.create_user("support", "support@example.com", is_staff=True)
    support.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_google_idtoken",
            codename__in=["view_linkedaccount", "change_linkedaccount"],
        )
    )
    assert support.get_all_permissions() == {
        "django_google_idtoken.view_linkedaccount",
        "django_google_idtoken.change_linkedaccount",
    }
    client.force_login(support)
    return client


def test_support_user_cannot_move_their_account_to_a_superuser(support_client, accounts):
    # The attack: a support user links their own Google account, opens it in
    # the admin, points it at the superuser and signs in with Google as the
    # superuser. The account must stay where it is.
    support = get_user_model().objects.get(username="support")
    own = LinkedAccount.objects.create(
        user=support, provider="google", sub="555555555555555555555", email="s@gmail.com"
    )
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    url = f"{CHANGELIST}{own.pk}/change/"

    page = support_client.get(url)
    assert page.status_code == 200
    assert 'name="user"' not in page.content.decode()
    assert "user" not in page.context["adminform"].form.fields

    response = support_client.post(url, {"user": root.pk, "_save": "Save"})

    assert response.status_code == 302, response.content[:2000]
    own.refresh_from_db()
    assert own.user == support
    assert not LinkedAccount.objects.filter(user=root).exists()


def test_user_page_inline_cannot_move_an_account(admin_client, accounts):
    # The inline on the User page: its foreign key is the page's user, and a
    # posted other user is refused rather than obeyed.
    ada, bob = accounts["ada"].user, accounts["bob"].user
    response = admin_client.post(
        f"/admin/auth/user/{ada.pk}/change/",
        {
            "username": ada.username,
            "email": ada.email,
            "is_active": "on",
            "date_joined_0": ada.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": ada.date_joined.strftime("%H:%M:%S"),
            "linked_accounts-TOTAL_FORMS": "1",
            "linked_accounts-INITIAL_FORMS": "1",
            "linked_accounts-MIN_NUM_FORMS": "0",
            "linked_accounts-MAX_NUM_FORMS": "1000",
            "linked_accounts-0-id": accounts["ada"].pk,
            "linked_accounts-0-user": bob.pk,
        },
    )

    assert response.status_code in (200, 302)
    assert LinkedAccount.objects.get(pk=accounts["ada"].pk).user == ada
    assert not LinkedAccount.objects.filter(user=bob).exclude(pk=accounts["bob"].pk).exists()


def test_add_page_is_forbidden(admin_client, accounts):
    # Accounts are linked by signing in with a verified token, never typed in.
    user = accounts["ada"].user
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    response = admin_client.post(
        f"{CHANGELIST}add/", {"user": user.pk, "sub": "4", "provider": "google"}
    )
    assert response.status_code == 403
    assert LinkedAccount.objects.count() == 3
    assert f'href="{CHANGELIST}add/"' not in admin_client.get(CHANGELIST).content.decode()


def test_unlink_action(admin_client, accounts):
    users_before = get_user_model().objects.count()
    response = admin_client.post(
        CHANGELIST,
        {
            "action": "unlink",
            "_selected_action": [accounts["ada"].pk, accounts["carol"].pk],
            "index": 0,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    assert set(LinkedAccount.objects.values_list("pk", flat=True)) == pks(accounts, "bob")
    # Unlinking removes the link, not the users.
    assert get_user_model().objects.count() == users_before
    messages = [str(message) for message in get_messages(response.wsgi_request)]
    assert messages == ["Unlinked 2 accounts."]

    # The message is shown on the changelist the action redirects to.
    page = admin_client.get(response["Location"])
    assert '<li class="success">Unlinked 2 accounts.</li>' in page.content.decode()
    assert listed(page) == pks(accounts, "bob")


def test_unlink_action_is_offered(admin_client, accounts):
    html = admin_client.get(CHANGELIST).content.decode()
    assert '<option value="unlink">Unlink selected accounts</option>' in html


def test_user_change_page_shows_linked_accounts_inline(admin_client, accounts):
    ada = accounts["ada"].user
    second = LinkedAccount.objects.create(
        user=ada, provider="nowgg", sub="444444444444444444444", email="ada@now.gg"
    )
    response = admin_client.get(f"/admin/auth/user/{ada.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Linked accounts" in html
    inline = next(
        formset
        for formset in response.context["inline_admin_formsets"]
        if formset.opts.model is LinkedAccount
    )
    assert {form.original.pk for form in inline} == {accounts["ada"].pk, second.pk}
    assert accounts["ada"].sub in html
    assert second.sub in html
    assert accounts["bob"].sub not in html  # another user's account is not shown
    # Read-only snapshot: the sub is text, not an input.
    assert 'name="linked_accounts-0-sub"' not in html
    assert f'href="{CHANGELIST}{accounts["ada"].pk}/change/"' in html


def test_user_change_page_still_saves_and_can_unlink(admin_client, accounts):
    # The inline must not break saving the User page; its "Delete?" box unlinks.
    ada = accounts["ada"].user
    url = f"/admin/auth/user/{ada.pk}/change/"
    page = admin_client.get(url)
    form = page.context["adminform"].form
    data: dict[str, Any] = {
        "username": ada.username,
        "email": "ada.new@analytical.org",
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "date_joined_0": ada.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": ada.date_joined.strftime("%H:%M:%S"),
        "linked_accounts-TOTAL_FORMS": "1",
        "linked_accounts-INITIAL_FORMS": "1",
        "linked_accounts-MIN_NUM_FORMS": "0",
        "linked_accounts-MAX_NUM_FORMS": "1000",
        "linked_accounts-0-id": accounts["ada"].pk,
        "linked_accounts-0-user": ada.pk,
        "linked_accounts-0-DELETE": "on",
    }
    assert "username" in form.fields

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    ada.refresh_from_db()
    assert ada.email == "ada.new@analytical.org"
    assert not LinkedAccount.objects.filter(pk=accounts["ada"].pk).exists()
    assert LinkedAccount.objects.count() == 2
