"""The key store: fetch an issuer's public keys, parse them once, share them.

* The raw key document is kept in a Django cache (``KEYS_CACHE``) so that all
  workers and servers share one fetch; each process also holds the parsed key
  objects, so a warm sign-in does no parsing and no network.
* Freshness follows the endpoint's ``Cache-Control: max-age`` (minus ``Age``),
  as Google's guide asks, clamped to a sane range.
* A cold or expired store triggers one fetch per process, not one per request
  (single flight under a lock).
* A token with an unknown ``kid`` triggers at most one refetch per cool-down
  period (``KEYS_REFETCH_COOLDOWN``-long windows of the clock), shared across
  processes through the cache: a flood of random kids cannot make us hammer
  the issuer. A kid is refused as unknown only when keys fetched after the
  token arrived do not list it; during the cool-down it is answered 503
  ``key_refresh_pending`` with Retry-After, so garbage that spends the
  window's refetch cannot get a rotated key's genuine tokens refused.
* If a refresh fails, the last good keys keep serving for ``KEYS_MAX_STALE``
  seconds past their expiry, with a warning logged.
* Lasting conditions (stale keys, no usable keys, the cache unreachable) are
  logged when they start, then at most once a minute with a count, and when
  they end (:mod:`.outages`): never a line, let alone a traceback, per
  request that meets them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.cache import caches

from . import transport
from .conf import conf
from .errors import KeysUnavailable, Refused
from .jws import Verifier, b64url_decode
from .outages import Outage

logger = logging.getLogger("django_google_idtoken.keys")

#: Key documents larger than this are refused. Google's is about 2 KB.
MAX_DOCUMENT_BYTES = 256 * 1024
#: Bounds on how long a fetched document counts as fresh, whatever the header says.
MIN_TTL = 5
MAX_TTL = 24 * 3600
#: Freshness when the endpoint sends no usable Cache-Control.
DEFAULT_TTL = 300
#: After a failed fetch with nothing usable cached, wait this long before the
#: next attempt (and tell clients so with Retry-After), rather than making
#: every request wait on a dead endpoint.
FAILURE_BACKOFF = 10
#: Keys shorter than this are ignored: Google signs with 2048-bit RSA keys.
MIN_RSA_BITS = 2048
#: The JWS algorithms (RFC 7518 section 3.3) an RSA key can verify here.
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "RS256": hashes.SHA256(),
    "RS384": hashes.SHA384(),
    "RS512": hashes.SHA512(),
}
_PKCS1V15 = padding.PKCS1v15()
# Values of the shared unknown-kid cool-down marker.
_FETCHING = "fetching"
_DONE = "done"
#: How many distinct key URLs one process keeps stores for.
MAX_STORES = 16
#: How many kids a process remembers as proven absent (see KeyStore.get);
#: longer kids (an issuer's are short) are not remembered.
MAX_ABSENT_KIDS = 1024
MAX_ABSENT_KID_LENGTH = 256

# ASCII only: "\d" and str.isdigit() also take digits of other scripts and
# superscripts ("²"), which int() then rejects or reads as numbers no HTTP
# header means (RFC 9111 1.2.2: delta-seconds is 1*DIGIT, and DIGIT is ASCII).
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?([0-9]+)\"?\s*(?:,|$)", re.IGNORECASE | re.ASCII)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE | re.ASCII)
#: RFC 9111 1.2.2: a delta-seconds value too large to hold counts as 2^31.
#: Values longer than 10 digits are never converted (a 5,000-digit max-age
#: would hit Python's limit on converting long digit strings).
_DELTA_SECONDS_CAP = 2**31


class FetchError(Exception):
    """The key endpoint could not be reached or returned something unusable."""


@dataclass(frozen=True)
class KeySet:
    """Parsed keys from one fetch of one document."""

    keys: Mapping[str, Verifier]
    digest: str
    fetched_at: float
    expires_at: float
    #: A document installed with :meth:`KeyStore.load` is, as its loader
    #: vouched, the issuer's complete key list until it expires: until then a
    #: kid not in it is unknown at once, with no refetch. 0 for fetched ones.
    complete_until: float = 0.0

    def usable_until(self, max_stale: float) -> float:
        return self.expires_at + max_stale


@dataclass
class FetchStats:
    """Counters for tests, benchmarks and ``idtoken_keys``."""

    fetches: int = 0
    failures: int = 0
    parses: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    #: Why the last fetch failed ("HTTP 500", "timed out"...); "" after a success.
    last_error: str = ""


@dataclass(frozen=True)
class SharedDocument:
    """The raw key document shared through ``KEYS_CACHE``, as fetched or loaded."""

    url: str
    body: bytes
    fetched_at: float
    expires_at: float


def _delta_seconds(text: str) -> int | None:
    """An HTTP delta-seconds value: ASCII digits only, capped at 2^31; None if
    ``text`` is not one. Never raises, whatever the header holds."""
    text = text.strip(" \t")
    if not text or not text.isascii() or not text.isdigit():
        return None
    text = text.lstrip("0") or "0"
    if len(text) > 10:
        return _DELTA_SECONDS_CAP
    return min(int(text), _DELTA_SECONDS_CAP)


def ttl_from_headers(cache_control: str | None, age: str | None) -> int:
    """Seconds the document stays fresh, per Cache-Control max-age minus Age,
    clamped to [MIN_TTL, MAX_TTL]. Any header value gives an answer: these
    headers come from the network, and a value this cannot read must not
    fail the fetch (let alone every sign-in)."""
    if not cache_control or _NO_CACHE.search(cache_control):
        return DEFAULT_TTL if not cache_control else MIN_TTL
    match = _MAX_AGE.search(cache_control)
    max_age = _delta_seconds(match.group(1)) if match else None
    if max_age is None:
        return DEFAULT_TTL
    age_seconds = _delta_seconds(age) if age else None
    ttl = max_age - (age_seconds or 0)
    return max(MIN_TTL, min(MAX_TTL, ttl))


def fetch_document(url: str, timeout: float) -> tuple[bytes, int]:
    """GET the key (or discovery) document; return (body, ttl seconds).

    Bounded in size and total time, no redirects (see :mod:`.transport`);
    anything but a 200 is a failure.
    """
    try:
        response = transport.request("GET", url, timeout=timeout, max_bytes=MAX_DOCUMENT_BYTES)
    except transport.TransportError as err:
        raise FetchError(str(err)) from None
    if response.status != 200:
        raise FetchError(f"HTTP {response.status}")
    return response.body, ttl_from_headers(response.header("Cache-Control"), response.header("Age"))


class RSAKey:
    """A parsed RSA public key and the JWS algorithms it may verify."""

    __slots__ = ("algorithms", "public_key")

    def __init__(self, public_key: rsa.RSAPublicKey, algorithms: frozenset[str]) -> None:
        self.public_key = public_key
        self.algorithms = algorithms

    def verify(self, message: bytes, signature: bytes, alg: str = "RS256") -> bool:
        """True if ``signature`` is a valid RSASSA-PKCS1-v1_5 signature of
        ``message`` under ``alg`` (one this key is for)."""
        if alg not in self.algorithms:
            return False
        try:
            self.public_key.verify(signature, message, _PKCS1V15, _HASHES[alg])
        except (InvalidSignature, ValueError):
            return False
        return True


def _rsa_from_jwk(jwk: Mapping[str, Any]) -> Verifier | None:
    if jwk.get("kty") != "RSA":
        return None
    # A key published for encryption must not verify signatures, and a key
    # published for one algorithm must not verify another's (RFC 7517 4.4).
    # A key that names none may serve any RSA algorithm the provider allows:
    # PKCS#1 v1.5 signs the hash's identifier too, so one hash cannot pass
    # for another.
    alg = jwk.get("alg")
    if jwk.get("use", "sig") != "sig" or (alg is not None and alg not in RSA_ALGORITHMS):
        return None
    # RFC 7517 section 4.3: a key whose key_ops leave out "verify" is not for
    # verifying signatures.
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        return None
    n_b64, e_b64 = jwk.get("n"), jwk.get("e")
    if not isinstance(n_b64, str) or not isinstance(e_b64, str):
        return None
    n = int.from_bytes(b64url_decode(n_b64), "big")
    e = int.from_bytes(b64url_decode(e_b64), "big")
    if n.bit_length() < MIN_RSA_BITS:
        return None
    public_key = rsa.RSAPublicNumbers(e, n).public_key()
    return RSAKey(public_key, frozenset({alg}) if alg is not None else RSA_ALGORITHMS)


def _rsa_from_pem_certificate(pem: str) -> Verifier | None:
    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < MIN_RSA_BITS:
        return None
    return RSAKey(public_key, RSA_ALGORITHMS)


def parse_document(body: bytes) -> dict[str, Verifier]:
    """Parse a JWKS (``{"keys": [...]}``, Google's v3/certs) or a map of kid to
    PEM certificate (Google's v1/certs) into verifiers. Keys that cannot be
    used are skipped; a document with no usable key is an error."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise FetchError("key document is not JSON") from err
    if not isinstance(document, dict):
        raise FetchError("key document is not a JSON object")
    keys: dict[str, Verifier] = {}
    if isinstance(document.get("keys"), list):
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                verifier = _rsa_from_jwk(jwk)
            except Exception:  # noqa: BLE001 - one bad key must not hide the others
                logger.warning("skipping an unparsable key (kid %r)", jwk["kid"][:64])
                continue
            if verifier is not None:
                keys[jwk["kid"]] = verifier
    else:
        for kid, pem in document.items():
            if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
                continue
            try:
                verifier = _rsa_from_pem_certificate(pem)
            except Exception:  # noqa: BLE001
                logger.warning("skipping an unparsable certificate (kid %r)", kid[:64])
                continue
            if verifier is not None:
                keys[kid] = verifier
    if not keys:
        raise FetchError("key document holds no usable RSA key")
    return keys


class KeyStore:
    """Keys for one URL. Use :func:`get_store` rather than building one."""

    #: The clock; tests replace it on an instance to move time.
    clock: Callable[[], float] = staticmethod(time.time)

    def __init__(self, url: str) -> None:
        self.url = url
        self.stats = FetchStats()
        self._keyset: KeySet | None = None
        self._lock = threading.Lock()
        self._retry_at = 0.0
        #: The cool-down window of this process's last unknown-kid refetch.
        self._last_window: int | None = None
        #: Kids that keys fetched after they first arrived did not list.
        self._absent_kids: OrderedDict[str, None] = OrderedDict()
        self._absent_lock = threading.Lock()
        #: The issuer's endpoint failing (keys stale, or none usable) ...
        self._fetching = Outage(logger)
        #: ... and KEYS_CACHE unreachable, each logged once, not per request.
        self._cache_outage = Outage(logger)
        url_hash = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
        self._cache_key = f"django_google_idtoken:keys:{url_hash}"
        self._cooldown_key = f"django_google_idtoken:refetch:{url_hash}"

    # -- public API -------------------------------------------------------

    def get(self, kid: str) -> Verifier:
        """The verifier for ``kid``, fetching keys if needed.

        Raises :class:`KeysUnavailable` when no usable keys can be had;
        ``LookupError`` when the issuer does not publish ``kid`` (keys
        fetched after this call began do not list it); and
        :class:`Refused` ``key_refresh_pending`` (503, with the seconds left
        of the cool-down as ``retry_after``) when ``kid`` is not among the
        keys held and the refetch cool-down forbids checking now.
        """
        arrival = self.clock()
        keyset = self.current()
        key = keyset.keys.get(kid)
        if key is not None:
            return key
        if arrival < keyset.complete_until or kid in self._absent_kids:
            # A kid proven absent earlier stays so: a fetch that began after
            # a token carrying it arrived did not list it, so the issuer had
            # not published it although a token was signed with it; no
            # genuine key is like that (issuers publish before they sign).
            raise LookupError(kid)
        keyset, definitive = self._refresh_for_unknown_kid(kid, keyset, arrival)
        key = keyset.keys.get(kid)
        if key is not None:
            return key
        if definitive:
            self._remember_absent(kid)
            raise LookupError(kid)
        # Keys fetched before this token arrived do not list its kid, and
        # the cool-down forbids fetching again now. The kid may be garbage,
        # or the key an issuer has just started signing with: nothing tells
        # them apart before a fetch, so neither is refused as unknown (a
        # client told 401 throws a good token away). Retry-After says when
        # the next refetch is allowed; any refetch from then on lists a key
        # the issuer had published when this token arrived.
        raise Refused("key_refresh_pending", retry_after=self._cooldown_left(self.clock()), kid=kid)

    def current(self) -> KeySet:
        """The current key set, fetching it if the store is cold or expired."""
        keyset = self._keyset
        now = self.clock()
        if keyset is not None and now < keyset.expires_at:
            return keyset
        stale_ok = keyset is not None and now < keyset.usable_until(conf.KEYS_MAX_STALE)
        # Single flight: one thread per process fetches. While it does, other
        # threads that still have usable (stale) keys go on with them.
        if not self._lock.acquire(blocking=not stale_ok, timeout=-1 if stale_ok else self._wait()):
            if stale_ok and keyset is not None:
                return keyset
            raise KeysUnavailable(retry_after=FAILURE_BACKOFF)
        try:
            return self._refresh_locked(force=False)
        finally:
            self._lock.release()

    def refresh(self) -> KeySet:
        """Fetch the document now, whatever the cache says (``idtoken_keys --refresh``).

        Raises :class:`FetchError`, whose message says why in words, if the
        fetch fails; the keys held are kept (sign-ins go on with them while
        they last), and nothing is logged: the caller reports the failure.
        """
        with self._lock:
            return self._fetch(self.clock())

    def load(self, document: bytes, ttl: float = DEFAULT_TTL) -> KeySet:
        """Install a key document as if it had just been fetched from this
        store's URL: parsed now, shared with every worker through
        ``KEYS_CACHE``, fresh for ``ttl`` seconds. Like a fetch, it starts
        the unknown-kid refetch cool-down (``KEYS_REFETCH_COOLDOWN``).

        For tests (``testing.FakeGoogle`` installs its keys this way, with no
        network) and for seeding keys obtained some other way. ``document`` is
        a JWKS or a map of kid to PEM certificate; ``ValueError`` if it holds
        no usable key. Whoever supplies the document decides who can sign
        in (none of the https-only checks of a fetch apply): load only
        documents from a source you trust. It is taken as the issuer's
        complete key list until it expires: a kid not in it is refused as
        unknown at once, with no refetch.
        """
        if not ttl > 0:
            raise ValueError("ttl must be positive")
        with self._lock:
            try:
                digest, parsed = self._parse(document)
            except FetchError as err:
                raise ValueError(str(err)) from None
            now = self.clock()
            keyset = self._share(document, digest, parsed, now=now, ttl=ttl, complete=True)
            self._retry_at = 0.0
            return keyset

    def shared_document(self) -> SharedDocument | None:
        """The document shared in ``KEYS_CACHE`` for this URL, fresh or not
        (None if there is none). Cache errors propagate (``idtoken_keys``
        reports them)."""
        entry = caches[conf.KEYS_CACHE].get(self._cache_key)
        if not isinstance(entry, dict):
            return None
        try:
            return SharedDocument(
                url=self.url,
                body=str(entry["body"]).encode("utf-8"),
                fetched_at=float(entry["fetched_at"]),
                expires_at=float(entry["expires_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def clear(self) -> None:
        """Forget the keys held in this process and in the shared cache."""
        with self._lock:
            self._keyset = None
            self._retry_at = 0.0
            self._last_window = None
            with self._absent_lock:
                self._absent_kids.clear()
            cache = caches[conf.KEYS_CACHE]
            cooldown = conf.KEYS_REFETCH_COOLDOWN
            window = self._window(self.clock(), cooldown) if cooldown > 0 else 0
            cache.delete_many([self._cache_key, self._window_key(window)])

    # -- internals ----------------------------------------------------------

    def _wait(self) -> float:
        # A thread waiting for another's fetch waits no longer than that fetch may take.
        return conf.HTTP_TIMEOUT + 1

    def _refresh_locked(self, *, force: bool) -> KeySet:
        now = self.clock()
        keyset = self._keyset
        if not force and keyset is not None and now < keyset.expires_at:
            return keyset  # another thread refreshed while we waited
        if not force:
            shared = self._from_shared_cache(now)
            if shared is not None:
                self._fetching.clear(now)  # another worker refreshed them
                return shared
        if not force and now < self._retry_at:
            return self._fallback(now, self.stats.last_error or "the last fetch failed")
        try:
            return self._fetch(now)
        except FetchError as err:
            return self._fallback(now, str(err))

    def _fetch(self, now: float) -> KeySet:
        """Fetch, parse and share the document; FetchError if that fails."""
        try:
            body, ttl = fetch_document(self.url, conf.HTTP_TIMEOUT)
            self.stats.fetches += 1
            digest, parsed = self._parse(body)
        except Exception as err:  # noqa: BLE001 - see _fetch_failed
            raise FetchError(self._fetch_failed(now, err)) from None
        self.stats.last_error = ""
        self._retry_at = 0.0
        changed = self._keyset is None or self._keyset.digest != digest
        keyset = self._share(body, digest, parsed, now=now, ttl=ttl)
        self._fetching.clear(now)
        # DEBUG for the same document again (made-up kids refetch it once per
        # cool-down window): INFO only when the keys changed.
        logger.log(
            logging.INFO if changed else logging.DEBUG,
            "fetched %d signing keys from %r (fresh for %ds)",
            len(parsed),
            self.url,
            ttl,
        )
        return keyset

    def _fetch_failed(self, now: float, err: Exception) -> str:
        """Count a failed fetch and back off; return why it failed, in words.

        Any exception, even one nothing here foresaw (a bug in reading some
        header or document), is a failed fetch: back-off, stale keys, then
        ``keys_unavailable``. Never a 500 on every sign-in for as long as
        the endpoint keeps sending what trips it."""
        if isinstance(err, FetchError):
            reason = str(err)
        else:
            reason = f"unexpected {type(err).__name__}"
            # A bug, not an outage: its traceback is worth having, and the
            # back-off keeps it to one per FAILURE_BACKOFF.
            logger.error("fetching signing keys from %r failed", self.url, exc_info=err)
        self.stats.failures += 1
        self.stats.last_error = reason
        self._retry_at = now + FAILURE_BACKOFF
        return reason

    def _share(
        self,
        body: bytes,
        digest: str,
        parsed: Mapping[str, Verifier],
        *,
        now: float,
        ttl: float,
        complete: bool = False,
    ) -> KeySet:
        """Hold the keys in this process and share the document through the cache."""
        complete_until = now + ttl if complete else 0.0
        keyset = self._install(
            parsed, digest, fetched_at=now, expires_at=now + ttl, complete_until=complete_until
        )
        entry = {
            "body": body.decode("utf-8"),
            "fetched_at": now,
            "expires_at": now + ttl,
            "complete_until": complete_until,
        }
        try:
            caches[conf.KEYS_CACHE].set(
                self._cache_key, entry, timeout=int(ttl + conf.KEYS_MAX_STALE) + 1
            )
        except Exception as err:  # noqa: BLE001 - a cache outage must not stop sign-ins
            self._cache_failed(now, err)
        else:
            self._cache_outage.clear(now)
        return keyset

    def _cache_failed(self, now: float, err: Exception) -> None:
        # Expected while Redis (or whatever KEYS_CACHE is) is down: no
        # traceback, and one line per outage rather than one per request.
        self._cache_outage.report(
            now,
            f"the keys cache {conf.KEYS_CACHE!r} is unreachable",
            logging.WARNING,
            f"{repr(err)[:200]}; keys are held in this process only meanwhile",
        )

    def _from_shared_cache(
        self, now: float, newer_than: float = -1.0, *, stale_ok: bool = False
    ) -> KeySet | None:
        try:
            entry = caches[conf.KEYS_CACHE].get(self._cache_key)
        except Exception as err:  # noqa: BLE001
            self._cache_failed(now, err)
            return None
        self._cache_outage.clear(now)
        if not isinstance(entry, dict):
            return None
        try:
            body = str(entry["body"]).encode("utf-8")
            fetched_at = float(entry["fetched_at"])
            expires_at = float(entry["expires_at"])
            complete_until = float(entry.get("complete_until", 0.0))
        except (KeyError, TypeError, ValueError):
            return None
        usable_until = expires_at + conf.KEYS_MAX_STALE if stale_ok else expires_at
        if now >= usable_until or fetched_at <= newer_than:
            return None
        try:
            digest, keys = self._parse(body)
        except FetchError:
            return None
        return self._install(
            keys,
            digest,
            fetched_at=fetched_at,
            expires_at=expires_at,
            complete_until=complete_until,
        )

    def _parse(self, body: bytes) -> tuple[str, Mapping[str, Verifier]]:
        """Parse a document, or reuse the parsed keys if it is the one we hold
        (a refetch of an unchanged document, or the same document another
        worker fetched): keys are parsed once per distinct document."""
        digest = hashlib.sha256(body).hexdigest()
        current = self._keyset
        if current is not None and current.digest == digest:
            return digest, current.keys
        keys = parse_document(body)
        self.stats.parses += 1
        return digest, keys

    def _install(
        self,
        keys: Mapping[str, Verifier],
        digest: str,
        *,
        fetched_at: float,
        expires_at: float,
        complete_until: float = 0.0,
    ) -> KeySet:
        keyset = KeySet(
            keys=keys,
            digest=digest,
            fetched_at=fetched_at,
            expires_at=expires_at,
            complete_until=complete_until,
        )
        self._keyset = keyset
        return keyset

    def _fallback(self, now: float, reason: str) -> KeySet:
        keyset = self._keyset
        if keyset is None:
            # A process started during an outage can still use the last good
            # document another worker left in the shared cache.
            keyset = self._from_shared_cache(now, stale_ok=True)
        if keyset is not None and now < keyset.usable_until(conf.KEYS_MAX_STALE):
            self._fetching.report(
                now,
                f"signing keys from {self.url!r} are stale",
                logging.WARNING,
                f"could not refresh them ({reason}); using keys fetched "
                f"{int(now - keyset.fetched_at)}s ago",
            )
            return keyset
        self._fetching.report(
            now, f"no usable signing keys from {self.url!r}", logging.ERROR, reason
        )
        retry_after = max(1, int(self._retry_at - now)) if self._retry_at > now else 1
        raise KeysUnavailable(retry_after=retry_after)

    def _remember_absent(self, kid: str) -> None:
        if len(kid) > MAX_ABSENT_KID_LENGTH:
            return
        with self._absent_lock:
            self._absent_kids[kid] = None
            while len(self._absent_kids) > MAX_ABSENT_KIDS:
                self._absent_kids.popitem(last=False)

    @staticmethod
    def _window(now: float, cooldown: float) -> int:
        """The cool-down window ``now`` falls in: windows are
        ``KEYS_REFETCH_COOLDOWN`` long and aligned to the clock, so every
        process agrees on them without talking to each other."""
        return math.floor(now / cooldown)

    def _window_key(self, window: int) -> str:
        return f"{self._cooldown_key}:{window}"

    def _cooldown_left(self, now: float) -> int:
        """Whole seconds until the next cool-down window (at least 1)."""
        cooldown = conf.KEYS_REFETCH_COOLDOWN
        if cooldown <= 0:
            return 1
        return max(1, math.ceil((self._window(now, cooldown) + 1) * cooldown - now))

    def _refresh_for_unknown_kid(
        self, kid: str, keyset: KeySet, arrival: float
    ) -> tuple[KeySet, bool]:
        """Refetch for ``kid``, which ``keyset`` does not list, if the
        cool-down allows.

        Returns the keys to look in and whether they are definitive: fetched
        after the token arrived (``arrival``), so that a kid they do not list
        is one the issuer does not publish. Raises :class:`KeysUnavailable`
        if the refetch fails (or the endpoint failed moments ago).
        """
        with self._lock:
            now = self.clock()
            # Another thread, or another worker, may already have fetched the
            # rotated document: use it rather than fetching again.
            held = self._keyset
            if held is None or held.fetched_at <= keyset.fetched_at:
                held = self._from_shared_cache(now, newer_than=keyset.fetched_at)
            if held is not None:
                if kid in held.keys or held.fetched_at >= arrival:
                    return held, True
                # Newer, but fetched before this token arrived: no proof yet.
                keyset = held
            if now < self._retry_at:
                # The endpoint failed moments ago: no refetch before the back-off ends.
                raise KeysUnavailable(retry_after=max(1, math.ceil(self._retry_at - now)))
            # Unknown kids are attacker-controlled: at most one refetch per
            # cool-down window, in this process and (cache.add is atomic, SET
            # NX on Redis) across every worker sharing the cache, however
            # many distinct kids arrive. A window whose refetch garbage took
            # does not starve a rotation: the next window's refetch, whoever
            # makes it, lists every key published before it started.
            cooldown = conf.KEYS_REFETCH_COOLDOWN
            marker: str | None = None  # the shared window marker this refetch holds
            if cooldown > 0:
                window = self._window(now, cooldown)
                if self._last_window == window:
                    return keyset, False
                self._last_window = window
                window_key = self._window_key(window)
                try:
                    won = caches[conf.KEYS_CACHE].add(
                        window_key, _FETCHING, timeout=math.ceil(cooldown) + 1
                    )
                except Exception as err:  # noqa: BLE001 - the local cool-down still applies
                    self._cache_failed(now, err)
                    won = True
                else:
                    self._cache_outage.clear(now)
                    marker = window_key if won else None
                if not won:
                    # Another worker is refetching right now, most likely for
                    # the same rotated key: wait for its document rather than
                    # refuse genuine tokens meanwhile.
                    newer = self._await_shared_refetch(keyset, window_key)
                    return newer, newer is not keyset and (
                        kid in newer.keys or newer.fetched_at >= arrival
                    )
            self.stats.extra["unknown_kid_refetches"] = (
                self.stats.extra.get("unknown_kid_refetches", 0) + 1
            )
            try:
                return self._fetch(now), True
            except FetchError as err:
                self._fetching.report(
                    now,
                    f"signing keys from {self.url!r} cannot be refetched",
                    logging.WARNING,
                    f"{err}; tokens with a kid not among the keys held get keys_unavailable",
                )
                raise KeysUnavailable(retry_after=FAILURE_BACKOFF) from None
            finally:
                if marker is not None:
                    with contextlib.suppress(Exception):
                        caches[conf.KEYS_CACHE].set(marker, _DONE, timeout=math.ceil(cooldown) + 1)

    def _await_shared_refetch(self, keyset: KeySet, window_key: str) -> KeySet:
        deadline = time.monotonic() + self._wait()
        while True:
            shared = self._from_shared_cache(self.clock(), newer_than=keyset.fetched_at)
            if shared is not None:
                return shared
            try:
                marker = caches[conf.KEYS_CACHE].get(window_key)
            except Exception as err:  # noqa: BLE001
                self._cache_failed(self.clock(), err)
                marker = None
            if marker != _FETCHING or time.monotonic() >= deadline:
                return keyset
            time.sleep(0.05)


_stores: OrderedDict[str, KeyStore] = OrderedDict()
_stores_lock = threading.Lock()


def get_store(url: str) -> KeyStore:
    """The process-wide store for ``url`` (a bounded registry: tests and
    multi-provider setups may use several URLs, but memory stays bounded)."""
    store = _stores.get(url)
    if store is not None:
        return store  # the hot path: no lock, no reordering (eviction is oldest-first)
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = KeyStore(url)
            while len(_stores) > MAX_STORES:
                _stores.popitem(last=False)
        return store


def reset_stores() -> None:
    """Drop every process-local store (for tests; the shared cache is untouched)."""
    with _stores_lock:
        _stores.clear()
