"""Identity providers: an issuer, its client ids, and a way to verify tokens.

* ``google`` (built in, the default): tokens verified locally against the
  keys at ``CERTS_URL``; configured by the top-level settings.
* ``oidc``: any OpenID Connect issuer that publishes its keys (Sign in with
  Apple, Microsoft, Okta...), verified locally with the same key store.
* ``nowgg``: Login with now.gg, which publishes no keys: each token is checked
  by its Verify Token API (:mod:`.nowgg`).

Each provider turns a token into :class:`~.claims.Claims` or raises
:class:`~.errors.Refused`; the account policy never sees an unverified token.
Providers other than Google are configured under ``PROVIDERS``, by name.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

from .claims import Claims, check_claims
from .conf import SETTING_NAME, conf
from .emails import domain_of
from .errors import KeysUnavailable, Refused
from .jws import ParsedToken, check_header, parse, verify_signature
from .keys import FAILURE_BACKOFF, RSA_ALGORITHMS, FetchError, fetch_document, get_store
from .transport import url_allowed

logger = logging.getLogger("django_google_idtoken")

GOOGLE = "google"

#: Google's two spellings of its issuer, per its backend-auth guide.
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})

#: Google signs ID tokens with RS256 only. The token's own "alg" never widens this.
GOOGLE_ALGORITHMS = frozenset({"RS256"})

#: Addresses for which Google itself is the mail provider, and so the authority
#: on who owns them (besides Workspace domains, shown by the hd claim).
GOOGLE_MAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

#: Provider names: they go into URLs (``signin/<name>/``) and into
#: ``LinkedAccount.provider`` (32 characters).
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def google_is_authoritative(claims: Claims) -> bool:
    """True if Google vouches for who owns ``claims.email``: Gmail addresses,
    and Workspace addresses whose domain is the token's hd claim. For any other
    address, "email_verified" only says the address was verified once, not
    that this Google account still owns it."""
    if not claims.email_verified or "@" not in claims.email:
        return False
    domain = domain_of(claims.email)
    return domain in GOOGLE_MAIL_DOMAINS or (
        bool(claims.hosted_domain) and domain == claims.hosted_domain
    )


def _verify_signature(parsed: ParsedToken, kid: str, keys_url: str) -> None:
    """Verify ``parsed`` with the key ``kid`` published at ``keys_url``."""
    try:
        key = get_store(keys_url).get(kid)
    except LookupError:
        raise Refused("unknown_key", kid=kid) from None
    # A key published for one algorithm verifies no other (RFC 7517 4.4):
    # for this token's algorithm, the issuer publishes no such key.
    if parsed.header["alg"] not in key.algorithms:
        raise Refused("unknown_key", kid=kid)
    verify_signature(parsed, key)


class Provider:
    """What the backend and the account policy need of a provider."""

    #: The name accounts are recorded under (``LinkedAccount.provider``).
    name: str
    #: The ``iss`` values its tokens carry.
    issuers: frozenset[str] = frozenset()
    #: Whether verifying a token costs a call to the provider (now.gg's
    #: Verify Token API) rather than local work: Bearer authentication takes
    #: such tokens only with ``BEARER_REMOTE_PROVIDERS``.
    verifies_remotely: bool = False
    #: The clock used for exp/iat/nbf; tests replace it on an instance.
    clock: Callable[[], float] = staticmethod(time.time)

    def verify(self, token: object) -> Claims:
        """Return the token's claims if every check passes; raise Refused otherwise."""
        raise NotImplementedError

    def email_is_authoritative(self, claims: Claims) -> bool:
        """May ``claims.email`` link this account to an existing user with
        that address (when ``LINK_BY_EMAIL`` is on)? Only if the provider
        vouches that the account owns the address today."""
        return False


class GoogleProvider(Provider):
    """Verifies Google ID tokens against the keys at ``CERTS_URL``."""

    name = GOOGLE
    issuers = GOOGLE_ISSUERS

    # Every local below (the token, its parsed parts, a request body) stays
    # out of Django's error reports, in this frame and every frame it calls.
    @sensitive_variables()
    def verify(self, token: object) -> Claims:
        parsed = parse(token)
        kid = check_header(parsed, GOOGLE_ALGORITHMS)
        certs_url, client_ids, hosted_domains, leeway = conf.read(
            "CERTS_URL", "CLIENT_IDS", "HOSTED_DOMAINS", "LEEWAY"
        )
        _verify_signature(parsed, kid, certs_url)
        # Claims are read only after the signature verified: until then they
        # are attacker-written text.
        return check_claims(
            parsed.payload,
            provider=self.name,
            issuers=GOOGLE_ISSUERS,
            client_ids=client_ids,
            hosted_domains=hosted_domains,
            leeway=leeway,
            now=self.clock(),
            signature=parsed.signature,
        )

    def email_is_authoritative(self, claims: Claims) -> bool:
        return google_is_authoritative(claims)


class OIDCProvider(Provider):
    """Any OpenID Connect issuer with published keys (a JWKS URL, or a
    discovery document naming one), verified locally like Google's."""

    def __init__(
        self,
        name: str,
        *,
        issuer: str,
        client_ids: tuple[str, ...],
        algorithms: frozenset[str],
        jwks_url: str | None = None,
        discovery_url: str | None = None,
        trust_email: bool = False,
    ) -> None:
        self.name = name
        self.issuer = issuer
        self.issuers = frozenset({issuer})
        self.client_ids = client_ids
        self.algorithms = algorithms
        self.jwks_url = jwks_url
        self.discovery_url = discovery_url
        self.trust_email = trust_email
        self._lock = threading.Lock()
        self._discovered: tuple[str, float] | None = None  # (jwks_uri, fresh until)
        self._retry_at = 0.0

    # Every local below (the token, its parsed parts, a request body) stays
    # out of Django's error reports, in this frame and every frame it calls.
    @sensitive_variables()
    def verify(self, token: object) -> Claims:
        parsed = parse(token)
        # The allow-list is this provider's configuration, never the token's alg.
        kid = check_header(parsed, self.algorithms)
        _verify_signature(parsed, kid, self.keys_url())
        claims = check_claims(
            parsed.payload,
            provider=self.name,
            # OIDC Core 3.1.3.7: iss must exactly match the configured issuer.
            issuers=self.issuers,
            client_ids=self.client_ids,
            hosted_domains=(),
            leeway=conf.LEEWAY,
            now=self.clock(),
            signature=parsed.signature,
        )
        # "hd" is Google's claim; from another issuer it means nothing.
        claims.hosted_domain = ""
        # Sign in with Apple sends email_verified as the string "true". The
        # signed token is the issuer's own statement, so its exact spelling
        # "true" counts; "false", "1" or anything else does not.
        if claims.email and not claims.email_verified:
            claims.email_verified = claims.raw.get("email_verified") == "true"
        return claims

    def email_is_authoritative(self, claims: Claims) -> bool:
        # Off unless configured: many issuers let users put any address on
        # their account, and some mark such addresses verified (the "nOAuth"
        # takeovers of Microsoft Entra apps). Only TRUST_EMAIL says otherwise.
        return self.trust_email and claims.email_verified

    def keys_url(self) -> str:
        """The JWKS URL: configured, or read from the discovery document."""
        if self.jwks_url is not None:
            return self.jwks_url
        now = time.monotonic()
        discovered = self._discovered
        if discovered is not None and now < discovered[1]:
            return discovered[0]
        with self._lock:
            discovered = self._discovered
            if discovered is not None and now < discovered[1]:
                return discovered[0]
            if now < self._retry_at:
                if discovered is not None:
                    return discovered[0]
                raise KeysUnavailable(retry_after=max(1, int(self._retry_at - now)))
            try:
                jwks_uri, ttl = self._discover()
            except Exception as err:  # noqa: BLE001
                # Any failure, even one not foreseen here, is a failed fetch
                # (back-off, the last good jwks_uri, keys_unavailable), never
                # a 500 on every sign-in: the document comes from the network.
                self._retry_at = now + FAILURE_BACKOFF
                if isinstance(err, FetchError):
                    logger.warning("discovery document of provider %s: %s", self.name, err)
                else:
                    logger.error(
                        "discovery document of provider %s: unexpected %s",
                        self.name,
                        type(err).__name__,
                        exc_info=err,
                    )
                if discovered is not None:
                    # Keep using the last good answer: the keys it names have
                    # their own freshness and stale rules in the key store.
                    return discovered[0]
                raise KeysUnavailable(retry_after=FAILURE_BACKOFF) from None
            self._discovered = (jwks_uri, now + ttl)
            return jwks_uri

    def _discover(self) -> tuple[str, int]:
        assert self.discovery_url is not None
        body, ttl = fetch_document(self.discovery_url, conf.HTTP_TIMEOUT)
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise FetchError("discovery document is not JSON") from None
        if not isinstance(document, dict):
            raise FetchError("discovery document is not a JSON object")
        # OIDC Discovery 4.3: the document's issuer must be exactly the one
        # configured, or an attacker-controlled document could name its own keys.
        if document.get("issuer") != self.issuer:
            raise FetchError("discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        # Its jwks_uri is where signing keys come from: https only, like CERTS_URL.
        if not isinstance(jwks_uri, str) or not url_allowed(jwks_uri):
            raise FetchError("discovery document has no https jwks_uri")
        return jwks_uri, ttl


google = GoogleProvider()


# -- configuration -----------------------------------------------------------------

#: Settings keys each provider type takes, and their defaults (None: required).
PROVIDER_KEYS: dict[str, dict[str, Any]] = {
    "oidc": {
        "TYPE": None,
        "CLIENT_IDS": None,
        "ISSUER": None,
        "JWKS_URL": "",
        "DISCOVERY_URL": "",
        "ALGORITHMS": ["RS256"],
        "TRUST_EMAIL": False,
    },
    "nowgg": {
        "TYPE": None,
        "CLIENT_IDS": None,
        "VERIFY_URL": "https://now.gg/accounts/oauth2/v1/verify-token",
        "CACHE_SECONDS": 60,
    },
}


class Problem:
    """One thing wrong with a provider's configuration, with its check id."""

    __slots__ = ("check_id", "message")

    def __init__(self, check_id: str, message: str) -> None:
        self.check_id = check_id
        self.message = message


def _where(name: object, key: str | None = None) -> str:
    suffix = f"[{key!r}]" if key else ""
    return f"{SETTING_NAME}['PROVIDERS'][{name!r}]{suffix}"


def _strings(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(i, str) and i for i in value)


def provider_problems(name: object, config: object) -> list[Problem]:
    """Everything wrong with one entry of ``PROVIDERS`` (empty if nothing)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return [
            Problem(
                "E006",
                f"{_where(name)}: a provider name is 1 to 32 lowercase letters, digits, "
                "'-' or '_'.",
            )
        ]
    if name == GOOGLE:
        return [Problem("E006", f"{_where(name)}: 'google' is configured by the top-level keys.")]
    if not isinstance(config, Mapping):
        return [Problem("E006", f"{_where(name)} must be a dict.")]
    kind = config.get("TYPE", "nowgg" if name == "nowgg" else None)
    if kind not in PROVIDER_KEYS:
        return [
            Problem(
                "E006",
                f"{_where(name, 'TYPE')} must be 'oidc' or 'nowgg', not {kind!r}.",
            )
        ]
    problems = [
        Problem("E006", f"{_where(name)} has an unknown key {key!r}.")
        for key in sorted(set(config) - set(PROVIDER_KEYS[kind]), key=str)
    ]
    if not config.get("CLIENT_IDS"):
        problems.append(
            Problem(
                "E007",
                f"{_where(name, 'CLIENT_IDS')} is missing or empty: no token can be accepted.",
            )
        )
    elif not _strings(config["CLIENT_IDS"]):
        problems.append(
            Problem("E006", f"{_where(name, 'CLIENT_IDS')} must be a list of non-empty strings.")
        )
    urls = ["VERIFY_URL"] if kind == "nowgg" else ["ISSUER", "JWKS_URL", "DISCOVERY_URL"]
    for key in urls:
        value = config.get(key, PROVIDER_KEYS[kind][key])
        if key == "ISSUER" and not value:
            problems.append(Problem("E006", f"{_where(name, key)} is required."))
        elif not isinstance(value, str):
            problems.append(Problem("E006", f"{_where(name, key)} must be a string."))
        elif value and not url_allowed(value):
            # Keys, discovery documents and verdicts fetched over plain http
            # could be swapped in transit; an http issuer is not OIDC.
            problems.append(
                Problem("E008", f"{_where(name, key)} must be an https URL (or http on loopback).")
            )
    if kind == "oidc":
        if bool(config.get("JWKS_URL")) == bool(config.get("DISCOVERY_URL")):
            problems.append(
                Problem("E006", f"{_where(name)}: give exactly one of JWKS_URL and DISCOVERY_URL.")
            )
        algorithms = config.get("ALGORITHMS", ["RS256"])
        if not _strings(algorithms) or not algorithms or set(algorithms) - RSA_ALGORITHMS:
            problems.append(
                Problem(
                    "E006",
                    f"{_where(name, 'ALGORITHMS')} must list algorithms among "
                    f"{', '.join(sorted(RSA_ALGORITHMS))}.",
                )
            )
        if not isinstance(config.get("TRUST_EMAIL", False), bool):
            problems.append(Problem("E006", f"{_where(name, 'TRUST_EMAIL')} must be a bool."))
    else:
        seconds = config.get("CACHE_SECONDS", 60)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            problems.append(
                Problem("E006", f"{_where(name, 'CACHE_SECONDS')} must be a number, 0 or more.")
            )
    return problems


def issuer_problems(providers: Mapping[Any, Any]) -> list[Problem]:
    """E020: providers whose tokens carry the same ``iss`` (Google's included).

    ``Authorization: Bearer`` chooses the provider by the token's ``iss``
    (:func:`provider_for_token`), so only one of them would ever be asked:
    every token of the others would be refused ``wrong_audience``. Entries
    with problems of their own are left to those.
    """
    from .nowgg import NOWGG_ISSUER

    owners = dict.fromkeys(GOOGLE_ISSUERS, GOOGLE)
    problems = []
    for name, config in providers.items():
        if provider_problems(name, config):
            continue
        kind = config.get("TYPE", "nowgg" if name == "nowgg" else None)
        issuer = NOWGG_ISSUER if kind == "nowgg" else config["ISSUER"]
        owner = owners.setdefault(issuer, name)
        if owner != name:
            problems.append(
                Problem(
                    "E020",
                    f"{_where(name)}: its tokens' issuer {issuer!r} is also provider "
                    f"{owner!r}'s, so Bearer authentication would never reach it.",
                )
            )
    return problems


def build_provider(name: str, config: Mapping[str, Any]) -> Provider:
    """The provider an entry of ``PROVIDERS`` describes (already checked)."""
    kind = config.get("TYPE", "nowgg" if name == "nowgg" else None)
    client_ids = tuple(config["CLIENT_IDS"])
    if kind == "nowgg":
        from .nowgg import NowggProvider

        return NowggProvider(
            name,
            client_ids=client_ids,
            verify_url=config.get("VERIFY_URL", PROVIDER_KEYS["nowgg"]["VERIFY_URL"]),
            cache_seconds=float(config.get("CACHE_SECONDS", 60)),
        )
    return OIDCProvider(
        name,
        issuer=config["ISSUER"],
        client_ids=client_ids,
        algorithms=frozenset(config.get("ALGORITHMS", ["RS256"])),
        jwks_url=config.get("JWKS_URL") or None,
        discovery_url=config.get("DISCOVERY_URL") or None,
        trust_email=config.get("TRUST_EMAIL", False),
    )


class _Registry:
    # Rebuilt when the settings change: conf hands out the same PROVIDERS
    # object until then, so one identity check guards the hot path.
    source: ClassVar[object] = None
    providers: ClassVar[dict[str, Provider]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()


def _providers() -> dict[str, Provider]:
    raw = conf.PROVIDERS
    if _Registry.source is raw:
        return _Registry.providers
    with _Registry.lock:
        if _Registry.source is raw:
            return _Registry.providers
        providers: dict[str, Provider] = {}
        for name, config in raw.items():
            problems = provider_problems(name, config)
            if problems:
                raise ImproperlyConfigured(problems[0].message)
            providers[name] = build_provider(name, config)
        clashes = issuer_problems(raw)
        if clashes:
            raise ImproperlyConfigured(clashes[0].message)
        _Registry.providers = providers
        _Registry.source = raw
        return providers


def provider_names() -> list[str]:
    """Every configured provider's name, Google first."""
    return [GOOGLE, *_providers()]


def provider_for_token(token: object) -> Provider:
    """The provider whose issuer the token's (unverified) ``iss`` names, or
    Google if none does: for callers that get tokens without a provider name
    (``Authorization: Bearer``). Choosing by an unverified claim gives an
    attacker nothing: the chosen provider then verifies the token against its
    own keys (or verify endpoint) and checks ``iss`` exactly."""
    providers = _providers()
    if not providers:
        return google  # nothing to choose from: no second parse of the token
    iss = parse(token).payload.get("iss")
    if isinstance(iss, str) and iss not in GOOGLE_ISSUERS:
        for provider in providers.values():
            if iss in provider.issuers:
                return provider
    return google


def get_provider(name: str | None = None) -> Provider:
    """The provider called ``name`` (Google when None); refuses
    ``unknown_provider`` for a name that is not configured."""
    if name is None or name == GOOGLE:
        return google
    provider = _providers().get(name) if isinstance(name, str) else None
    if provider is None:
        raise Refused("unknown_provider")
    return provider
