"""One typed Settings object, read from the environment (a TOML file may add to it).

Every option is listed in ``OPTIONS`` with its embedded default and a one-line doc; the README's
configuration table is generated from the same list (``yihao config --markdown``).
"""
from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit


class ConfigError(Exception):
    """Invalid configuration: names the setting and says what is wrong, in one line."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


@dataclass(frozen=True)
class Option:
    env: str
    attr: str
    default: str
    doc: str


OPTIONS: tuple[Option, ...] = (
    Option("YIHAO_ISSUER", "issuer", "http://127.0.0.1:8000", "Issuer URL; https required except on loopback."),
    Option("YIHAO_BIND", "bind", "127.0.0.1:8000", "host:port that `yihao serve` listens on."),
    Option("YIHAO_DATABASE_URL", "database_url", "sqlite:///./var/yihao.db", "SQLAlchemy URL: SQLite (embedded) or postgresql://… (production). Unset: yihao.db in YIHAO_VAR_DIR."),
    Option("YIHAO_REDIS_URL", "redis_url", "", "Redis URL for the ephemeral store; unset → in-process store (one worker only)."),
    Option("YIHAO_REDIS_PREFIX", "redis_prefix", "yihao:", "Prefix of every Redis key (several deployments may share one Redis)."),
    Option("YIHAO_MASTER_KEY", "master_key", "", "Base64url 32-byte master key; required in production, generated into ./var/ when embedded."),
    Option("YIHAO_MASTER_KEY_FILE", "master_key_file", "", "File holding the master key (alternative to YIHAO_MASTER_KEY)."),
    Option("YIHAO_VAR_DIR", "var_dir", "./var", "Folder for the embedded database and generated master key."),
    Option("YIHAO_REGISTRATION", "registration", "token", "Dynamic client registration policy: open | token (an initial access token from `yihao clients iat`)."),
    Option("YIHAO_EGRESS_ALLOW", "egress_allow", "", "Networks (CIDR, comma-separated) that self-registered clients' URLs (sector_identifier_uri, back-channel logout) may reach although private or loopback; the demo allows loopback."),
    Option("YIHAO_WORKERS", "workers", "1", "Worker processes for `yihao serve` (>1 needs Redis)."),
    Option("YIHAO_THREADS", "threads", "16", "Thread-pool size per worker for the synchronous core."),
    Option("YIHAO_ACCESS_TOKEN_TTL", "access_token_ttl", "600", "Access-token lifetime, seconds."),
    Option("YIHAO_ID_TOKEN_TTL", "id_token_ttl", "600", "ID-token lifetime, seconds."),
    Option("YIHAO_REFRESH_TOKEN_IDLE_TTL", "refresh_token_idle_ttl", "1209600", "A refresh token unused this long expires, seconds (14 days)."),
    Option("YIHAO_REFRESH_TOKEN_MAX_TTL", "refresh_token_max_ttl", "2592000", "Absolute lifetime of a refresh-token family from login, seconds (30 days)."),
    Option("YIHAO_REFRESH_REUSE_GRACE", "refresh_reuse_grace", "10", "A rotated refresh token presented again this soon, before its successor was used, gets a sibling instead of revoking the family (concurrent refresh); 0 disables, seconds."),
    Option("YIHAO_CODE_TTL", "code_ttl", "60", "Authorization-code lifetime, seconds."),
    Option("YIHAO_INTERACTION_TTL", "interaction_ttl", "900", "Time a person has to finish a login/consent interaction, seconds."),
    Option("YIHAO_SESSION_IDLE_TTL", "session_idle_ttl", "28800", "SSO session idle lifetime, seconds."),
    Option("YIHAO_SESSION_MAX_TTL", "session_max_ttl", "86400", "SSO session absolute lifetime, seconds."),
    Option("YIHAO_LOGOUT_POLL_INTERVAL", "logout_poll_interval", "5", "How often each worker looks for due back-channel logout deliveries, seconds."),
    Option("YIHAO_LOGOUT_RETRY_BASE", "logout_retry_base", "10", "First back-channel logout retry delay; doubles per attempt, with jitter, seconds."),
    Option("YIHAO_LOGOUT_RETRY_MAX", "logout_retry_max", "3600", "Longest delay between two back-channel logout attempts, seconds."),
    Option("YIHAO_LOGOUT_MAX_ATTEMPTS", "logout_max_attempts", "12", "Back-channel logout attempts before a delivery is given up."),
    Option("YIHAO_LOGOUT_MAX_AGE", "logout_max_age", "86400", "A back-channel logout not delivered this long after the logout is given up, seconds."),
    Option("YIHAO_ARGON2_MEMORY_KIB", "argon2_memory_kib", "19456", "argon2id memory cost (OWASP: 19456 KiB)."),
    Option("YIHAO_ARGON2_TIME_COST", "argon2_time_cost", "2", "argon2id iterations (OWASP: 2)."),
    Option("YIHAO_ARGON2_PARALLELISM", "argon2_parallelism", "1", "argon2id lanes (OWASP: 1)."),
    Option("YIHAO_ARGON2_CONCURRENCY", "argon2_concurrency", "0", "Password hashes one worker computes at once; more wait their turn (0: the CPUs the process may use, divided by YIHAO_WORKERS)."),
    Option("YIHAO_ACCESS_TOKEN_ALG", "access_token_alg", "RS256", "JWS algorithm of access tokens: RS256 | ES256 | EdDSA."),
    Option("YIHAO_MAX_BODY_BYTES", "max_body_bytes", "65536", "Largest request body accepted, bytes."),
    Option("YIHAO_DEFAULT_LOCALE", "default_locale", "zh-CN", "Page language when the browser asks for none we have: zh-CN | en."),
    Option("YIHAO_AUDIT_BATCH_MS", "audit_batch_ms", "50", "Longest time an audit event waits in memory to be written in one transaction with others, milliseconds (shutdown writes what waits)."),
    Option("YIHAO_THROTTLE_ACCOUNT_FAILURES", "throttle_account_failures", "5", "Failed attempts on one account (username, phone, client at one address) before it is locked for a while."),
    Option("YIHAO_THROTTLE_ADDRESS_FAILURES", "throttle_address_failures", "30", "Failed attempts from one client address, on any accounts, before that address is locked for a while."),
    Option("YIHAO_THROTTLE_WINDOW", "throttle_window", "900", "Failures are forgotten this long after the last one, seconds."),
    Option("YIHAO_THROTTLE_LOCK", "throttle_lock", "30", "First lock once the failures reach their limit; doubles with each further failure, seconds."),
    Option("YIHAO_THROTTLE_LOCK_MAX", "throttle_lock_max", "900", "Longest lock, seconds."),
    Option("YIHAO_LOG_LEVEL", "log_level", "INFO", "Log level: DEBUG | INFO | WARNING | ERROR."),
    Option("YIHAO_DEMO", "demo", "false", "Seed the demo citizen and relying party and serve /demo."),
    Option("YIHAO_PII_CIPHER", "pii_cipher", "aes-256-gcm", "AEAD for ID numbers and credit codes at rest: aes-256-gcm | sm4-gcm (national crypto); a change applies to new writes, `yihao keys rewrap` moves old rows."),
    Option("YIHAO_PII_KEY_VERSION", "pii_key_version", "1", "Version of the PII encryption key derived from the master key; raise it, then run `yihao keys rewrap` (older versions stay readable)."),
    Option("YIHAO_POPULATION_REGISTRY", "population_registry", "local", "Where name + ID number are verified: local (tables filled by `yihao registry import`) | http (a remote service)."),
    Option("YIHAO_POPULATION_REGISTRY_URL", "population_registry_url", "", "Base URL of the remote verification service (POST {url}/verify); required with http; https except on loopback."),
    Option("YIHAO_POPULATION_REGISTRY_TIMEOUT_MS", "population_registry_timeout_ms", "2000", "Timeout of one call to the remote registry, milliseconds; a slow answer counts as unavailable, never as a mismatch."),
    Option("YIHAO_POPULATION_REGISTRY_RETRIES", "population_registry_retries", "2", "Retries after a transport error or 5xx (exponential backoff from 100 ms); a definite answer is never retried."),
    Option("YIHAO_REGISTRY_BREAKER_FAILURES", "registry_breaker_failures", "5", "Consecutive failed calls that open the circuit breaker (calls then answer unavailable at once)."),
    Option("YIHAO_REGISTRY_BREAKER_COOLDOWN", "registry_breaker_cooldown", "30", "Seconds an open breaker waits before one probe call (half-open)."),
    Option("YIHAO_ACR_VALUES", "acr_values", "loa/1 loa/2 loa/3 loa/4", "The four `acr` values (URIs), weakest first, for identity level × login strength L1–L4."),
    Option("YIHAO_TRUST_FRAMEWORK", "trust_framework", "cn_realname", "`trust_framework` of verified_claims (OpenID Connect for Identity Assurance): the rules identities are verified under."),
    Option("YIHAO_SIGNUP_MAX_FAILURES", "signup_max_failures", "5", "Failed real-name verifications (sign-up or upgrade) per client address and per ID number tried before they are locked (doubling from YIHAO_THROTTLE_LOCK)."),
    Option("YIHAO_SIGNUP_FAILURE_WINDOW", "signup_failure_window", "3600", "Failed verifications are forgotten this long after the last one, seconds."),
    Option("YIHAO_DPOP_NONCE", "dpop_nonce", "true", "DPoP proofs (RFC 9449) must carry a server nonce (`use_dpop_nonce`, `DPoP-Nonce` header) at the token endpoint and userinfo."),
    Option("YIHAO_DPOP_PROOF_MAX_AGE", "dpop_proof_max_age", "60", "A DPoP proof whose iat is older than this is refused (its jti is remembered as long), seconds."),
    Option("YIHAO_DEVICE_CODE_TTL", "device_code_ttl", "600", "Life of a device code and its user code (RFC 8628 device flow), seconds."),
    Option("YIHAO_DEVICE_POLL_INTERVAL", "device_poll_interval", "5", "Least time between two polls of one device code; each early poll answers slow_down and adds 5, seconds."),
    Option("YIHAO_UPSTREAM_TIMEOUT_MS", "upstream_timeout_ms", "5000", "Timeout of one call to an upstream identity provider (discovery, keys, token), milliseconds; a slow upstream gets a clear error page."),
    Option("YIHAO_CERT_CHALLENGE_TTL", "cert_challenge_ttl", "300", "Life of a certificate-login challenge (single use, bound to the browser and the sign-in), seconds."),
    Option("YIHAO_CERT_AGENT_URL", "cert_agent_url", "http://127.0.0.1:18321", "Where the login page finds the local signing agent (USB-key agent on the person's PC); loopback http or https."),
    Option("YIHAO_CRL_TIMEOUT_MS", "crl_timeout_ms", "3000", "Timeout of one CRL download, milliseconds; a CRL that cannot be had leaves the status unknown (refused unless the CA allows a stale CRL)."),
    Option("YIHAO_CRL_MAX_BYTES", "crl_max_bytes", "10485760", "Largest CRL downloaded, bytes."),
    Option("YIHAO_MTLS_PROXIES", "mtls_proxies", "", "Addresses (IPs or CIDR ranges, comma-separated) of TLS-terminating proxies whose client-certificate header is believed; empty: mutual-TLS login off."),
    Option("YIHAO_MTLS_HEADER", "mtls_header", "X-SSL-Client-Cert", "Header in which those proxies forward the client certificate they verified (URL-encoded PEM, as nginx's $ssl_client_escaped_cert, or base64 DER)."),
    Option("YIHAO_PAR_TTL", "par_ttl", "60", "Life of a pushed authorization request's single-use request_uri (RFC 9126), seconds (10–600)."),
    Option("YIHAO_REQUIRE_PAR", "require_par", "false", "Every client must push its authorization requests to /par (RFC 9126 §5); a client may also require it for itself."),
    Option("YIHAO_FETCH_TIMEOUT_MS", "fetch_timeout_ms", "2000", "Timeout of fetching a client's jwks_uri or request_uri, milliseconds."),
    Option("YIHAO_FETCH_MAX_BYTES", "fetch_max_bytes", "65536", "Largest jwks_uri or request_uri document accepted from a client, bytes."),
    Option("YIHAO_JWKS_CACHE_TTL", "jwks_cache_ttl", "300", "How long a client's fetched jwks_uri key set is used before it is fetched again, seconds."),
    Option("YIHAO_JWKS_REFETCH_INTERVAL", "jwks_refetch_interval", "10", "Shortest time between two fetches of one client's jwks_uri for an unknown kid, seconds (all workers together)."),
)

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
_ALGS = ("RS256", "ES256", "EdDSA")


def is_loopback_host(host: str | None) -> bool:
    """True for localhost names and loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    issuer: str
    bind: str
    database_url: str
    redis_url: str | None
    redis_prefix: str
    master_key: str
    master_key_file: str
    var_dir: Path
    registration: str
    egress_allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    workers: int
    threads: int
    access_token_ttl: int
    id_token_ttl: int
    refresh_token_idle_ttl: int
    refresh_token_max_ttl: int
    refresh_reuse_grace: int
    code_ttl: int
    interaction_ttl: int
    session_idle_ttl: int
    session_max_ttl: int
    logout_poll_interval: int
    logout_retry_base: int
    logout_retry_max: int
    logout_max_attempts: int
    logout_max_age: int
    argon2_memory_kib: int
    argon2_time_cost: int
    argon2_parallelism: int
    argon2_concurrency: int
    access_token_alg: str
    max_body_bytes: int
    default_locale: str
    audit_batch_ms: int
    throttle_account_failures: int
    throttle_address_failures: int
    throttle_window: int
    throttle_lock: int
    throttle_lock_max: int
    log_level: str
    demo: bool
    pii_cipher: str
    pii_key_version: int
    population_registry: str
    population_registry_url: str
    population_registry_timeout_ms: int
    population_registry_retries: int
    registry_breaker_failures: int
    registry_breaker_cooldown: int
    acr_values: tuple[str, ...]
    trust_framework: str
    signup_max_failures: int
    signup_failure_window: int
    dpop_nonce: bool
    dpop_proof_max_age: int
    device_code_ttl: int
    device_poll_interval: int
    upstream_timeout_ms: int
    cert_challenge_ttl: int
    cert_agent_url: str
    crl_timeout_ms: int
    crl_max_bytes: int
    mtls_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    mtls_header: str
    par_ttl: int
    require_par: bool
    fetch_timeout_ms: int
    fetch_max_bytes: int
    jwks_cache_ttl: int
    jwks_refetch_interval: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        """SQLite database: the laptop mode, where a master key may be generated."""
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies everywhere but plain-HTTP loopback."""
        return urlsplit(self.issuer).scheme == "https"

    @property
    def hsts(self) -> bool:
        """Strict-Transport-Security for an https issuer off loopback: pinning https://localhost for a
        year would break every other local service a developer runs on plain HTTP."""
        return self.secure_cookies and not is_loopback_host(urlsplit(self.issuer).hostname)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.bind.rpartition(":")
        return host.strip("[]"), int(port)

    def replace(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {value}")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise ConfigError(name, f"must be one of {' | '.join(allowed)}, got {raw!r}")
    return raw


def _issuer(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.query or parts.fragment:
        raise ConfigError("YIHAO_ISSUER", "must not have a query or fragment")
    return _service_url("YIHAO_ISSUER", raw)


def _bind(raw: str) -> str:
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError("YIHAO_BIND", f"must be host:port, got {raw!r}")
    return raw


def _database_url(raw: str) -> str:
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://"):]
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw[len("postgresql://"):]
    if not (raw.startswith("sqlite:///") or raw.startswith("postgresql+psycopg://")):
        raise ConfigError("YIHAO_DATABASE_URL", "must be sqlite:///PATH or postgresql://…")
    return raw


def _service_url(name: str, raw: str) -> str:
    """An absolute http(s) URL without a trailing slash; plain http only on loopback."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"must be an absolute http(s) URL, got {raw!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(name, "must use https (plain http is accepted only on loopback)")
    return raw.rstrip("/")


def _networks(name: str, raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(name, f"must be comma-separated networks such as 10.0.0.0/8: {exc}") from None


def _redis_url(raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("YIHAO_REDIS_URL", "must be redis://, rediss:// or unix://")
    return raw


def _acr_values(name: str, raw: str) -> tuple[str, ...]:
    values = tuple(raw.split())
    if len(values) != 4 or len(set(values)) != 4:
        raise ConfigError(name, "must be four distinct values separated by spaces, weakest first")
    return values


def _token(name: str, raw: str) -> str:
    if not raw or any(c.isspace() for c in raw) or len(raw) > 64:
        raise ConfigError(name, "must be one word of at most 64 characters")
    return raw


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "issuer": lambda n, v: _issuer(v),
    "bind": lambda n, v: _bind(v),
    "database_url": lambda n, v: _database_url(v),
    "redis_url": lambda n, v: _redis_url(v),
    "var_dir": lambda n, v: Path(v),
    "registration": lambda n, v: _choice(n, v, ("open", "token")),
    "egress_allow": _networks,
    "workers": lambda n, v: _int(n, v, 1),
    "threads": lambda n, v: _int(n, v, 1),
    "access_token_ttl": lambda n, v: _int(n, v, 30),
    "id_token_ttl": lambda n, v: _int(n, v, 30),
    "refresh_token_idle_ttl": lambda n, v: _int(n, v, 60),
    "refresh_token_max_ttl": lambda n, v: _int(n, v, 60),
    "refresh_reuse_grace": lambda n, v: _int(n, v, 0),
    "code_ttl": lambda n, v: _int(n, v, 5),
    "interaction_ttl": lambda n, v: _int(n, v, 30),
    "session_idle_ttl": lambda n, v: _int(n, v, 60),
    "session_max_ttl": lambda n, v: _int(n, v, 60),
    "logout_poll_interval": lambda n, v: _int(n, v, 1),
    "logout_retry_base": lambda n, v: _int(n, v, 1),
    "logout_retry_max": lambda n, v: _int(n, v, 1),
    "logout_max_attempts": lambda n, v: _int(n, v, 1),
    "logout_max_age": lambda n, v: _int(n, v, 1),
    "argon2_memory_kib": lambda n, v: _int(n, v, 8),
    "argon2_time_cost": lambda n, v: _int(n, v, 1),
    "argon2_parallelism": lambda n, v: _int(n, v, 1),
    "argon2_concurrency": lambda n, v: _int(n, v, 0),
    "access_token_alg": lambda n, v: _choice(n, v, _ALGS),
    "max_body_bytes": lambda n, v: _int(n, v, 1024),
    "default_locale": lambda n, v: _choice(n, v, ("zh-CN", "en")),
    "audit_batch_ms": lambda n, v: _int(n, v, 1),
    "throttle_account_failures": lambda n, v: _int(n, v, 1),
    "throttle_address_failures": lambda n, v: _int(n, v, 1),
    "throttle_window": lambda n, v: _int(n, v, 1),
    "throttle_lock": lambda n, v: _int(n, v, 1),
    "throttle_lock_max": lambda n, v: _int(n, v, 1),
    "log_level": lambda n, v: _choice(n, v.upper(), ("DEBUG", "INFO", "WARNING", "ERROR")),
    "demo": _bool,
    "pii_cipher": lambda n, v: _choice(n, v, ("aes-256-gcm", "sm4-gcm")),
    "pii_key_version": lambda n, v: _int(n, v, 1),
    "population_registry": lambda n, v: _choice(n, v, ("local", "http")),
    "population_registry_url": lambda n, v: _service_url(n, v) if v else v,
    "population_registry_timeout_ms": lambda n, v: _int(n, v, 50),
    "population_registry_retries": lambda n, v: _int(n, v, 0),
    "registry_breaker_failures": lambda n, v: _int(n, v, 1),
    "registry_breaker_cooldown": lambda n, v: _int(n, v, 1),
    "acr_values": lambda n, v: _acr_values(n, v),
    "trust_framework": lambda n, v: _token(n, v),
    "signup_max_failures": lambda n, v: _int(n, v, 1),
    "signup_failure_window": lambda n, v: _int(n, v, 60),
    "dpop_nonce": _bool,
    "dpop_proof_max_age": lambda n, v: _int(n, v, 5),
    "device_code_ttl": lambda n, v: _int(n, v, 60),
    "device_poll_interval": lambda n, v: _int(n, v, 1),
    "upstream_timeout_ms": lambda n, v: _int(n, v, 100),
    "cert_challenge_ttl": lambda n, v: _int(n, v, 30),
    "cert_agent_url": lambda n, v: _service_url(n, v),
    "crl_timeout_ms": lambda n, v: _int(n, v, 100),
    "crl_max_bytes": lambda n, v: _int(n, v, 1024),
    "mtls_proxies": _networks,
    "par_ttl": lambda n, v: _int(n, v, 10),
    "require_par": _bool,
    "fetch_timeout_ms": lambda n, v: _int(n, v, 50),
    "fetch_max_bytes": lambda n, v: _int(n, v, 1024),
    "jwks_cache_ttl": lambda n, v: _int(n, v, 10),
    "jwks_refetch_interval": lambda n, v: _int(n, v, 1),
}


def _from_toml(path: str) -> dict[str, str]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("YIHAO_CONFIG", f"cannot read {path}: {exc}") from None
    by_attr = {o.attr: o.env for o in OPTIONS}
    out: dict[str, str] = {}
    for key, value in data.items():
        env = by_attr.get(key) or (key if key in {o.env for o in OPTIONS} else None)
        if env is None:
            raise ConfigError("YIHAO_CONFIG", f"unknown setting {key!r} in {path}")
        out[env] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings: defaults, then the TOML file named by YIHAO_CONFIG, then the environment."""
    env = dict(os.environ if environ is None else environ)
    given = _from_toml(env["YIHAO_CONFIG"]) if env.get("YIHAO_CONFIG") else {}
    given.update({o.env: env[o.env] for o in OPTIONS if o.env in env})
    merged: dict[str, str] = {o.env: o.default for o in OPTIONS} | given
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = merged[option.env].strip()
        parser = _PARSERS.get(option.attr)
        values[option.attr] = parser(option.env, raw) if parser else raw
    if "YIHAO_DATABASE_URL" not in given and "YIHAO_VAR_DIR" in given:  # the embedded database moves with its folder
        values["database_url"] = f"sqlite:///{values['var_dir'] / 'yihao.db'}"
    settings = Settings(**values)
    if settings.session_max_ttl < settings.session_idle_ttl:
        raise ConfigError("YIHAO_SESSION_MAX_TTL", "must not be shorter than YIHAO_SESSION_IDLE_TTL")
    if settings.refresh_token_max_ttl < settings.refresh_token_idle_ttl:
        raise ConfigError("YIHAO_REFRESH_TOKEN_MAX_TTL", "must not be shorter than YIHAO_REFRESH_TOKEN_IDLE_TTL")
    if settings.logout_retry_max < settings.logout_retry_base:
        raise ConfigError("YIHAO_LOGOUT_RETRY_MAX", "must not be shorter than YIHAO_LOGOUT_RETRY_BASE")
    if settings.refresh_reuse_grace > 60:
        raise ConfigError("YIHAO_REFRESH_REUSE_GRACE", "must be at most 60 seconds (a longer grace hides token theft)")
    if settings.throttle_lock_max < settings.throttle_lock:
        raise ConfigError("YIHAO_THROTTLE_LOCK_MAX", "must not be shorter than YIHAO_THROTTLE_LOCK")
    if settings.workers > 1 and settings.redis_url is None:
        raise ConfigError("YIHAO_WORKERS", "more than one worker needs YIHAO_REDIS_URL (shared store)")
    if settings.population_registry == "http" and not settings.population_registry_url:
        raise ConfigError("YIHAO_POPULATION_REGISTRY_URL", "required when YIHAO_POPULATION_REGISTRY is http")
    if settings.par_ttl > 600:
        raise ConfigError("YIHAO_PAR_TTL", "must be at most 600 seconds (a request_uri is short-lived)")
    if not settings.embedded and not (settings.master_key or settings.master_key_file):
        raise ConfigError("YIHAO_MASTER_KEY", "required when YIHAO_DATABASE_URL is not SQLite")
    return settings


def options_markdown() -> str:
    """The configuration table of the README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{o.env}` | `{o.default or '(unset)'}` | {o.doc} |" for o in OPTIONS]
    return "\n".join(rows)
