"""verify: per-token CPU time of ID token verification, measured side by side.

L  one ``cryptography`` RSA-2048 PKCS#1 v1.5 SHA-256 verify of the token's
   signing input with a loaded key (the signature pre-decoded): the limit.
M  L plus the decoding any verifier must do: split the token, base64url-decode
   payload and signature (binascii), ``json.loads`` the payload; no checks.
   Not a target, a yardstick: what P costs beyond M is checking.
P  this package: ``providers.google.verify(token)``, key store warm (the keys
   were fetched once from a loopback key server before the rounds).
G  ``google.oauth2.id_token.verify_oauth2_token(token, request, CLIENT_ID)``
   whose certificate fetch is answered from memory (no network), so only its
   CPU counts: it still parses the certificates on every call.
J  PyJWT ``jwt.decode`` with a cached key object, audience and issuer.

Every method verifies the same distinct pre-minted tokens. Rounds interleave
the methods (the order rotates each round) so a shared machine's noise hits
all of them alike; ratios are taken per round, then the median.

    python benchmarks/verify.py [--quick] [--rounds 20] [--tokens 200] [--profile]
"""

from __future__ import annotations

import argparse
import binascii
import cProfile
import gc
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import (
    CLIENT_ID,
    KeyServer,
    machine_note,
    median,
    mint_tokens,
    new_issuer,
    print_table,
    spread,
    sub_for,
    utc_now,
    verdict,
)

TARGET_P_OVER_L = 1.3
TARGET_G_OVER_P = 2.0


class MemoryResponse:
    status = 200
    headers: dict[str, str] = {}

    def __init__(self, data: bytes) -> None:
        self.data = data


class MemoryRequest:
    """A ``google.auth.transport.Request``: answers any GET with the PEM map from memory."""

    def __init__(self, body: bytes) -> None:
        self.response = MemoryResponse(body)

    def __call__(self, url: str, method: str = "GET", **kwargs: Any) -> MemoryResponse:
        return self.response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 20; quick 5)")
    parser.add_argument("--tokens", type=int, help="tokens per method per round (default 200)")
    parser.add_argument("--profile", action="store_true", help="also cProfile P")
    args = parser.parse_args()
    rounds = args.rounds or (5 if args.quick else 20)
    per_round = args.tokens or (50 if args.quick else 200)
    warm = 20

    issuer = new_issuer()
    server = KeyServer(issuer)
    try:
        run(issuer, server, rounds, per_round, warm, args.profile)
    finally:
        server.close()


def run(issuer: Any, server: KeyServer, rounds: int, per_round: int, warm: int, profile: bool):
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=[],
        USE_TZ=True,
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        GOOGLE_IDTOKEN={"CLIENT_IDS": [CLIENT_ID], "CERTS_URL": server.url},
    )
    django.setup()

    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from google.oauth2 import id_token as google_id_token

    from django_google_idtoken.jws import b64url_decode
    from django_google_idtoken.keys import get_store
    from django_google_idtoken.providers import GOOGLE_ISSUERS, google

    count = rounds * per_round + warm
    started = time.monotonic()
    tokens = mint_tokens(issuer, range(1, count + 1))
    print(f"minted {len(tokens)} tokens in {time.monotonic() - started:.1f}s", file=sys.stderr)

    public_key = issuer.keys[issuer.active_kid].public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    pem_request = MemoryRequest(json.dumps(issuer.pem_certificates()).encode())
    issuers = sorted(GOOGLE_ISSUERS)
    to_std = bytes.maketrans(b"-_", b"+/")

    def limit(item: tuple[bytes, bytes]) -> None:
        public_key.verify(item[1], item[0], pkcs1, sha256)

    def minimum(token: str) -> Any:
        header, payload, signature = token.split(".")
        claims = json.loads(binascii.a2b_base64(payload.encode().translate(to_std) + b"=="))
        public_key.verify(
            binascii.a2b_base64(signature.encode().translate(to_std) + b"=="),
            f"{header}.{payload}".encode(),
            pkcs1,
            sha256,
        )
        return claims

    def package(token: str) -> Any:
        return google.verify(token)

    def google_auth(token: str) -> Any:
        return google_id_token.verify_oauth2_token(token, pem_request, CLIENT_ID)

    def pyjwt(token: str) -> Any:
        return jwt.decode(
            token, public_key, algorithms=["RS256"], audience=CLIENT_ID, issuer=issuers
        )

    def split(token: str) -> tuple[bytes, bytes]:
        signing_input, _, signature = token.rpartition(".")
        return signing_input.encode("ascii"), b64url_decode(signature)

    methods: dict[str, tuple[str, Callable[[Any], Any], Callable[[str], Any]]] = {
        "L": ("cryptography RSA verify (the limit)", limit, split),
        "M": ("L + split, base64url and JSON decoding", minimum, str),
        "P": ("this package, warm key store", package, str),
        "G": ("google-auth verify_oauth2_token, certs from memory", google_auth, str),
        "J": ("PyJWT jwt.decode, cached key", pyjwt, str),
    }

    # Warm-up and sanity: every method accepts the same token and reads the same sub.
    for token in tokens[:warm]:
        limit(split(token))
        sub = package(token).sub
        assert sub == google_auth(token)["sub"] == pyjwt(token)["sub"] == minimum(token)["sub"]
    assert google.verify(tokens[0]).sub == sub_for(1)
    fetches_before = server.snapshot()["/certs"]

    names = list(methods)
    per_token: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        batch = tokens[warm + r * per_round : warm + (r + 1) * per_round]
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            _, function, prepare = methods[name]
            inputs = [prepare(token) for token in batch]
            gc.collect()
            t0 = time.thread_time_ns()
            for item in inputs:
                function(item)
            elapsed = time.thread_time_ns() - t0
            per_token[name].append(elapsed / len(inputs) / 1000)

    fetches_measured = server.snapshot()["/certs"] - fetches_before
    store = get_store(settings.GOOGLE_IDTOKEN["CERTS_URL"])

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(per_token[a], per_token[b], strict=True)]

    print(f"\nverify: {utc_now()}; {machine_note()}")
    print(
        f"{rounds} rounds x {per_round} distinct tokens per method (order rotating); "
        "CPU time of the measuring thread per token"
    )
    limit_median = median(per_token["L"])
    print_table(
        "Per-token CPU time (microseconds; median over rounds, min-max across rounds)",
        ["method", "what", "median us", "min-max us", "x L"],
        [
            [
                name,
                methods[name][0],
                f"{median(per_token[name]):.1f}",
                spread(per_token[name]).replace(".00", ""),
                f"{median(per_token[name]) / limit_median:.2f}",
            ]
            for name in names
        ],
        left=2,
    )
    rows = []
    for label, a, b, target, at_most in (
        ("P/L", "P", "L", TARGET_P_OVER_L, True),
        ("G/P", "G", "P", TARGET_G_OVER_P, False),
        ("P/M", "P", "M", None, True),
        ("P/J", "P", "J", None, True),
        ("G/L", "G", "L", None, True),
        ("J/L", "J", "L", None, True),
    ):
        values = ratios(a, b)
        rows.append(
            [
                label,
                f"{median(values):.2f}",
                spread(values),
                verdict(median(values), target, at_most) if target else "reported",
            ]
        )
    print_table(
        "Ratios (median of per-round ratios)", ["ratio", "median", "min-max", "target"], rows
    )
    print(
        f"\nP key fetches: {store.stats.fetches} in all (the warm-up), "
        f"{fetches_measured} during the rounds; key parses: {store.stats.parses}"
    )

    if profile:
        profiler = cProfile.Profile()
        sample = tokens[warm:]
        profiler.enable()
        for token in sample:
            package(token)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
        stats.print_stats(20)
        print(f"\ncProfile of P over {len(sample)} tokens (cProfile inflates Python-level calls):")
        print(out.getvalue())


if __name__ == "__main__":
    main()
