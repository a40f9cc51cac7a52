"""Identity providers: an issuer, its client ids, and a way to verify tokens.

Google verifies locally against its published keys. Other providers (now.gg's
remote Verify Token API, generic OpenID Connect) plug in behind the same
``verify(token) -> Claims`` interface.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .claims import Claims, check_claims
from .conf import conf
from .errors import Refused
from .jws import check_header, parse, verify_signature
from .keys import get_store

GOOGLE = "google"

#: Google's two spellings of its issuer, per its backend-auth guide.
GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})

#: Google signs ID tokens with RS256 only. The token's own "alg" never widens this.
GOOGLE_ALGORITHMS = frozenset({"RS256"})


class GoogleProvider:
    """Verifies Google ID tokens against the keys at ``CERTS_URL``."""

    name = GOOGLE
    #: The clock used for exp/iat/nbf; tests replace it on an instance.
    clock: Callable[[], float] = staticmethod(time.time)

    def verify(self, token: object) -> Claims:
        """Return the token's claims if every check passes; raise Refused otherwise."""
        parsed = parse(token)
        kid = check_header(parsed, GOOGLE_ALGORITHMS)
        certs_url, client_ids, hosted_domains, leeway = conf.read(
            "CERTS_URL", "CLIENT_IDS", "HOSTED_DOMAINS", "LEEWAY"
        )
        store = get_store(certs_url)
        try:
            key = store.get(kid)
        except LookupError:
            raise Refused("unknown_key", kid=kid) from None
        verify_signature(parsed, key)
        # Claims are read only after the signature verified: until then they
        # are attacker-written text.
        claims = check_claims(
            parsed.payload,
            provider=self.name,
            issuers=GOOGLE_ISSUERS,
            client_ids=client_ids,
            hosted_domains=hosted_domains,
            leeway=leeway,
            now=self.clock(),
            signature=parsed.signature,
        )
        return claims


google = GoogleProvider()


def get_provider(name: str | None = None) -> GoogleProvider:
    """The provider called ``name`` (Google when None)."""
    if name in (None, GOOGLE):
        return google
    raise ValueError(f"unknown provider {name!r}")
