"""``manage.py idtoken_keys [--refresh] [--provider NAME]``: the signing keys
the app holds.

Lists the keys shared in ``KEYS_CACHE`` for ``CERTS_URL`` (or for an OpenID
Connect provider's JWKS URL, with ``--provider``) (kid, type,
whether they are used), when they were fetched, when they expire (per the
endpoint's Cache-Control) and whether they are stale. ``--refresh`` fetches
them now first and exits non-zero, with a one-line message, if that fails:
for deploy hooks and health checks.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf import conf
from ...errors import Refused
from ...jws import b64url_decode
from ...keys import FetchError, get_store, parse_document
from ...providers import GOOGLE, OIDCProvider, get_provider, provider_names


@dataclass(frozen=True)
class KeyInfo:
    kid: str
    kind: str
    used: bool


def _printable(text: str, limit: int = 80) -> str:
    # The document comes from the network: keep its strings from driving the terminal.
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jwk_kind(jwk: dict[str, Any]) -> str:
    kind = str(jwk.get("kty", "?"))
    n = jwk.get("n")
    if kind == "RSA" and isinstance(n, str):
        try:
            kind += f" {int.from_bytes(b64url_decode(n), 'big').bit_length()}-bit"
        except Refused:
            kind += " (bad modulus)"
    for name in ("alg", "use"):
        if name in jwk:
            kind += f" {name}={jwk[name]}"
    return kind


def _certificate_kind(pem: str) -> str:
    try:
        public_key = x509.load_pem_x509_certificate(pem.encode("ascii")).public_key()
    except ValueError:
        return "unreadable certificate"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}-bit certificate"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name} certificate"
    return f"{type(public_key).__name__} certificate"


def describe(body: bytes) -> list[KeyInfo]:
    """Every key the document lists, and whether the app uses it (keys of the
    wrong type, size or purpose are ignored by the key store)."""
    try:
        used = set(parse_document(body))
        document = json.loads(body)
    except (FetchError, ValueError):
        return []
    if isinstance(document.get("keys"), list):
        return [
            KeyInfo(str(jwk.get("kid")), _jwk_kind(jwk), jwk.get("kid") in used)
            for jwk in document["keys"]
            if isinstance(jwk, dict)
        ]
    return [
        KeyInfo(kid, _certificate_kind(pem) if isinstance(pem, str) else "?", kid in used)
        for kid, pem in document.items()
    ]


def _when(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"


class Command(BaseCommand):
    help = (
        "Show the signing keys cached for CERTS_URL, or for an OpenID Connect provider's "
        "JWKS URL with --provider (kids, types, fetch time, expiry, staleness). --refresh "
        "fetches them now, and fails if that fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--provider",
            default=None,
            help="an OpenID Connect provider of PROVIDERS (default: google, at CERTS_URL)",
        )
        parser.add_argument(
            "--refresh",
            action="store_true",
            help="fetch the keys now; exit non-zero if the fetch fails (health checks)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url, cache_alias, max_stale = conf.read("CERTS_URL", "KEYS_CACHE", "KEYS_MAX_STALE")
        name = options["provider"]
        if name not in (None, GOOGLE):
            try:
                provider = get_provider(name)
            except Refused:
                names = ", ".join(provider_names())
                raise CommandError(f"unknown provider {name!r} (configured: {names})") from None
            if not isinstance(provider, OIDCProvider):
                raise CommandError(f"provider {name!r} publishes no keys: it verifies remotely")
            try:
                # A discovery document is read (or fetched) to find the JWKS URL.
                url = provider.keys_url()
            except Refused as refusal:
                raise CommandError(f"provider {name!r}: {refusal.detail}") from None
        # The URL is printed as repr(), like kids are: with --provider it is
        # a discovery document's jwks_uri, from the network, and its escape
        # sequences must not drive the operator's terminal.
        store = get_store(url)
        if options["refresh"]:
            try:
                store.refresh()
            except FetchError as err:
                # One line, the reason in words ("cannot resolve host ..."):
                # the store logs nothing for a refresh it was asked for.
                raise CommandError(f"could not fetch keys from {url!r}: {err}") from None
            self.stdout.write(f"Fetched keys from {url!r}.")
        try:
            shared = store.shared_document()
        except Exception as err:  # noqa: BLE001 - any cache backend's failure
            raise CommandError(
                f"could not read the {cache_alias!r} cache: {type(err).__name__}"
            ) from None
        if shared is None:
            self.stdout.write(
                f"No keys cached for {url!r} in the {cache_alias!r} cache. "
                "Run with --refresh to fetch them now."
            )
            return
        now = store.clock()
        if now < shared.expires_at:
            status = f"fresh, {_span(shared.expires_at - now)} left"
        elif now < shared.expires_at + max_stale:
            status = (
                f"STALE: expired {_span(now - shared.expires_at)} ago; used while refreshing "
                f"fails for {_span(shared.expires_at + max_stale - now)} more (KEYS_MAX_STALE)"
            )
        else:
            status = f"EXPIRED {_span(now - shared.expires_at)} ago, past KEYS_MAX_STALE: not used"
        keys = describe(shared.body)
        self.stdout.write(f"Keys for {url!r} (cache {cache_alias!r})")
        self.stdout.write(f"Fetched: {_when(shared.fetched_at)}")
        self.stdout.write(f"Expires: {_when(shared.expires_at)} ({status})")
        rows = [("KID", "TYPE", "USED")] + [
            (_printable(key.kid), _printable(key.kind), "yes" if key.used else "no (ignored)")
            for key in keys
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        for kid, kind, used in rows:
            self.stdout.write(f"{kid.ljust(widths[0])}  {kind.ljust(widths[1])}  {used}")
