"""The OpenAPI schema drf-spectacular generates for the app's URLs (the
``openapi`` extra): request bodies, answers and every refusal code with its
status; the schema validates; and the app works without drf-spectacular."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from django_google_idtoken.errors import REFUSALS

from .helpers import REPO_ROOT

SIGNIN = "/auth/google/signin/"
ME = "/auth/google/me/"
ACCOUNTS = "/auth/google/accounts/"
DETAIL = "/auth/google/accounts/{account_id}/"
TOKEN_CODES = {
    "malformed_token",
    "unsupported_algorithm",
    "unknown_key",
    "invalid_signature",
    "wrong_issuer",
    "wrong_audience",
    "token_expired",
    "token_not_yet_valid",
    "invalid_claims",
}
FORMS = {"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated = SchemaGenerator(urlconf="tests.urls_openapi").get_schema(request=None, public=True)
    # Through JSON, as clients read it (lazy strings and tuples become plain).
    return dict(json.loads(json.dumps(generated, default=str)))


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def body_schema(schema: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return resolve(schema, response["content"]["application/json"]["schema"])


def refusal_codes(schema: dict[str, Any], path: str, method: str) -> dict[int, set[str]]:
    """status -> the codes the refusal answers of this operation list."""
    codes = {}
    for status, response in schema["paths"][path][method]["responses"].items():
        if int(status) < 400:
            continue
        body = body_schema(schema, response)
        assert body["required"] == ["code", "detail"]
        enum = body["properties"]["code"]["enum"]
        # Each code has an example answer with that code.
        examples = response["content"]["application/json"]["examples"]
        assert {example["value"]["code"] for example in examples.values()} == set(enum)
        codes[int(status)] = set(enum)
    return codes


def test_the_schema_validates(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    # --validate checks it against the OpenAPI 3 JSON schema; --fail-on-warn
    # fails on anything drf-spectacular could not work out from the views.
    call_command(
        "spectacular",
        "--urlconf",
        "tests.urls_openapi",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(out),
    )
    assert set(json.loads(out.read_text())["paths"]) == {
        SIGNIN,
        SIGNIN + "{provider}/",
        ME,
        ACCOUNTS,
        DETAIL,
    }


def test_operations(schema: dict[str, Any]) -> None:
    operations = {
        path: sorted(method for method in item if method != "parameters")
        for path, item in schema["paths"].items()
    }
    assert operations == {
        SIGNIN: ["post"],
        SIGNIN + "{provider}/": ["post"],
        ME: ["get"],
        ACCOUNTS: ["get", "post"],
        DETAIL: ["delete"],
    }


def test_signin_with_a_named_provider(schema: dict[str, Any]) -> None:
    both = [schema["paths"][path]["post"] for path in (SIGNIN, SIGNIN + "{provider}/")]
    assert [op["operationId"] for op in both] == [
        "google_idtoken_signin",
        "google_idtoken_signin_provider",
    ]
    [provider] = [p for p in both[1]["parameters"] if p["in"] == "path"]
    assert provider["name"] == "provider" and provider["required"] is True
    # The same body, answers and refusals as signin/.
    assert both[0]["requestBody"] == both[1]["requestBody"]
    assert both[0]["responses"] == both[1]["responses"]


def test_signin_request_body(schema: dict[str, Any]) -> None:
    content = schema["paths"][SIGNIN]["post"]["requestBody"]["content"]
    # No multipart: sign-in refuses it unread (415).
    assert set(content) == FORMS - {"multipart/form-data"}
    as_json = resolve(schema, content["application/json"]["schema"])
    assert as_json["required"] == ["id_token"]
    assert as_json["properties"]["id_token"]["type"] == "string"
    form = resolve(schema, content["application/x-www-form-urlencoded"]["schema"])
    assert set(form["properties"]) == {"idToken", "id_token"}


def test_signin_answer(schema: dict[str, Any]) -> None:
    ok = body_schema(schema, schema["paths"][SIGNIN]["post"]["responses"]["200"])
    assert set(ok["properties"]) == {"user", "created", "account", "token"}
    assert set(ok["required"]) == {"user", "created", "account"}
    user = resolve(schema, ok["properties"]["user"])
    assert set(user["properties"]) == {"id", "username", "email", "first_name", "last_name"}
    account = resolve(schema, ok["properties"]["account"])
    assert set(account["properties"]) == {
        "provider",
        "sub",
        "email",
        "email_verified",
        "hosted_domain",
        "name",
        "picture",
    }
    token_kinds = [kind["type"] for kind in ok["properties"]["token"]["oneOf"]]
    assert token_kinds == ["string", "object"]


def test_signin_refusals(schema: dict[str, Any]) -> None:
    codes = refusal_codes(schema, SIGNIN, "post")
    assert codes == {
        400: {"missing_token"},
        401: TOKEN_CODES | {"token_replayed"},
        403: {
            "hosted_domain_not_allowed",
            "csrf_failed",
            "user_inactive",
            "signup_disabled",
            "email_in_use",
            "email_not_verified",
        },
        404: {"unknown_provider"},
        415: {"unsupported_media_type"},
        502: {"provider_error"},
        503: {
            "keys_unavailable",
            "key_refresh_pending",
            "replay_check_unavailable",
            "provider_unavailable",
        },
    }
    # Sign-in answers each of our codes with the status errors.REFUSALS gives.
    for status, listed in codes.items():
        for code in listed & set(REFUSALS):
            assert REFUSALS[code][0] == status, code
    retry_after = schema["paths"][SIGNIN]["post"]["responses"]["503"]["headers"]
    assert retry_after["Retry-After"]["schema"]["type"] == "integer"


def test_user_endpoints_take_a_bearer_token_or_a_session(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["googleIdToken"]["scheme"] == "bearer"
    assert schemes["cookieAuth"]["in"] == "cookie"
    for path, method in [(ME, "get"), (ACCOUNTS, "get"), (ACCOUNTS, "post"), (DETAIL, "delete")]:
        security = schema["paths"][path][method]["security"]
        assert {"googleIdToken": []} in security
        assert {"cookieAuth": []} in security
        codes = refusal_codes(schema, path, method)
        # A Bearer token is refused with 401 for every reason but unavailable keys.
        assert {"not_authenticated", "account_not_linked", "user_inactive"} <= codes[401]
        assert codes[401] >= TOKEN_CODES
        assert "missing_token" in codes[400]  # a malformed Authorization header
        assert "keys_unavailable" in codes[503]
        assert "key_refresh_pending" in codes[503]
    # Sign-in takes no credential but the token in its body.
    assert schema["paths"][SIGNIN]["post"].get("security", [{}]) == [{}]


def test_me_answer(schema: dict[str, Any]) -> None:
    ok = body_schema(schema, schema["paths"][ME]["get"]["responses"]["200"])
    assert set(ok["properties"]) == {"id", "username", "email", "first_name", "last_name"}


def test_accounts_list_and_link(schema: dict[str, Any]) -> None:
    listing = schema["paths"][ACCOUNTS]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["schema"]["type"] == "array"
    item = resolve(schema, listing["schema"]["items"])
    assert {"id", "provider", "sub", "email", "created_at", "last_signed_in_at"} <= set(
        item["properties"]
    )

    post = schema["paths"][ACCOUNTS]["post"]
    assert set(post["requestBody"]["content"]) == FORMS
    as_json = resolve(schema, post["requestBody"]["content"]["application/json"]["schema"])
    assert set(as_json["properties"]) == {"id_token", "provider"}
    assert as_json["required"] == ["id_token"]
    assert {"200", "201"} <= set(post["responses"])
    codes = refusal_codes(schema, ACCOUNTS, "post")
    assert codes[400] == {"missing_token"}
    assert codes[404] == {"unknown_provider"}
    assert codes[502] == {"provider_error"}
    assert "provider_unavailable" in codes[503]
    assert "replay_check_unavailable" in codes[503]
    assert "token_replayed" in codes[401]
    assert codes[403] == {"csrf_failed", "hosted_domain_not_allowed"}
    assert codes[409] == {"account_linked_elsewhere"}
    assert codes[415] == {"unsupported_media_type"}


def test_unlink(schema: dict[str, Any]) -> None:
    delete = schema["paths"][DETAIL]["delete"]
    assert "content" not in delete["responses"]["204"]
    (param,) = [p for p in delete["parameters"] if p["in"] == "path"]
    assert (param["name"], param["schema"]["type"]) == ("account_id", "integer")
    codes = refusal_codes(schema, DETAIL, "delete")
    assert codes[403] == {"csrf_failed"}
    assert codes[404] == {"not_found"}
    assert codes[409] == {"last_login_method"}


def test_every_refusal_code_is_documented_somewhere(schema: dict[str, Any]) -> None:
    documented: set[str] = set()
    for path, item in schema["paths"].items():
        for method in item:
            if method != "parameters":
                for codes in refusal_codes(schema, path, method).values():
                    documented |= codes
    assert set(REFUSALS) <= documented


def test_the_readme_refusal_table_lists_every_code_with_its_status() -> None:
    """README.rst's refusal table agrees with errors.REFUSALS (which the
    schema's descriptions are built from): every code, with its status."""
    text = (REPO_ROOT / "README.rst").read_text(encoding="utf-8")
    table = text[text.index("Refusal codes\n-------------") : text.index("Clients\n-------")]
    rows = re.findall(r"^(\d{3})\s+``([a-z_]+)``", table, re.MULTILINE)
    statuses = {code: int(status) for status, code in rows}
    assert {code: status for code, (status, _) in REFUSALS.items()}.items() <= statuses.items()


def test_the_app_works_without_drf_spectacular() -> None:
    # A fresh interpreter in which drf_spectacular cannot be imported (None in
    # sys.modules): the app loads, its checks pass, its URLs resolve.
    code = "\n".join(
        [
            "import sys",
            "sys.modules['drf_spectacular'] = None",
            "import django",
            "django.setup()",
            "from django.core.management import call_command",
            "from django.urls import resolve",
            "call_command('check')",
            "assert resolve('/auth/google/accounts/').url_name == 'accounts'",
            "assert 'django_google_idtoken.rest_framework.schema' not in sys.modules",
            "print('ok')",
        ]
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_no_openapi"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.strip().endswith("ok")
