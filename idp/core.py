"""Everything a worker needs, built once from Settings: database, store, keys, clients, OAuth core."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import Engine

from federation import Federation
from federation.exchange import Tokens
from idp.authn.acr import scheme as acr_scheme

from idp import db, events
from idp.accounts import Accounts
from idp.audit import chain_key
from idp.authn.certificate import CertificateLogin
from idp.authn.passkeys import Passkeys
from idp.authn.password import Passwords, cpu_share
from idp.authn.stepup import SecondFactors
from idp.authn.totp import Totp
from idp.client_keys import ClientKeys
from idp.clients import ClientRegistry
from idp.consents import Consents
from idp.crypto import MasterKey, load_master_key
from idp.device import DeviceCodes
from idp.dpop import DPoP
from idp.fetch import Fetcher
from idp.grants.authorization_code import AuthorizationCodeGrant, PkceS256
from idp.grants.client_credentials import ClientCredentialsGrant
from idp.grants.device_code import DeviceAuthorization, DeviceCodeGrant
from idp.grants.jwt_bearer import JwtBearerGrant
from idp.grants.refresh_token import RefreshTokenGrant
from idp.grants.token_exchange import TokenExchangeGrant
from idp.keys import KeyRing
from idp.oauth.mtls import tls_client_auth
from idp.oauth.assertion import ClientSecretJwt, PrivateKeyJwt
from idp.oauth.server import YihaoServer
from idp.pki.crl import HttpCrlSource, Revocation
from idp.pki.truststore import TrustStore
from idp.refresh import RefreshTokens
from idp.sessions import Sessions
from idp.settings import Settings, is_loopback_host
from idp.store.ephemeral import EphemeralStore, open_store
from idp.store.memory import MemoryStore
from idp.throttle import Throttle
from idp.tokens import TokenIssuer
from realname.identity import Identities
from realname.pii import PiiVault, open_vault
from realname.registry import (LegalEntityRegistry, PopulationRegistry, open_legal_entity_registry,
                               open_population_registry)
from realname.enterprises import Enterprises
from realname.verification import Verification


@dataclass
class Core:
    settings: Settings
    engine: Engine
    store: EphemeralStore
    master: MasterKey
    keys: KeyRing
    clients: ClientRegistry
    accounts: Accounts
    consents: Consents
    sessions: Sessions
    issuer: TokenIssuer
    refresh: RefreshTokens
    server: YihaoServer
    vault: PiiVault
    identities: Identities
    population: PopulationRegistry
    entities: LegalEntityRegistry
    throttle: Throttle
    dpop: DPoP
    devices: DeviceCodes
    federation: Federation
    trust: TrustStore
    certificates: CertificateLogin
    factors: SecondFactors
    client_keys: ClientKeys
    fetcher: Fetcher
    audit: events.AuditWriter | None = None
    verification: Verification = field(init=False)  # real-name verification (sign-up, L1 → L2)
    enterprises: Enterprises = field(init=False)  # enterprise accounts and who acts for them
    # True when the store is this process's memory and the database a local SQLite file: nothing the
    # core reads or writes waits on the network (see idp.endpoints.sync)
    local_io: bool = field(init=False)
    checkpointer: db.Checkpointer | None = None  # SQLite: the write-ahead log is copied back off the request path

    def close(self) -> None:
        self.federation.close()
        if self.audit is not None:
            self.audit.close()  # queued audit rows reach the database before the engine goes
        self.fetcher.close()
        self.store.close()
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()


def build_core(settings: Settings, *, store: EphemeralStore | None = None, migrate: bool = False) -> Core:
    """Wire the parts; `migrate` upgrades the schema first (the embedded default does)."""
    master = load_master_key(settings)
    engine = db.make_engine(settings.database_url, pool_size=max(5, settings.threads))
    checkpointer = db.Checkpointer.attach(engine)  # before the first connection: each gets its backstop
    if migrate:
        db.upgrade(engine, audit_chain_key=chain_key(master))
    store = store or open_store(settings.redis_url, settings.redis_prefix)
    audit = events.configure(engine, chain_key(master), interval=settings.audit_batch_ms / 1000)
    keys = KeyRing(engine, master, store)
    clients = ClientRegistry(engine, store, sealer=master.aead("client-secret"))
    fetcher = Fetcher(settings.fetch_timeout_ms / 1000, settings.fetch_max_bytes,
                      allow_loopback=is_loopback_host(urlsplit(settings.issuer).hostname))
    client_keys = ClientKeys(store, fetcher, cache_ttl=settings.jwks_cache_ttl,
                             refetch_interval=settings.jwks_refetch_interval)
    issuer = TokenIssuer(settings, keys, store, master.derive("pairwise-subject"), master.aead("access-token-ref"))
    sessions = Sessions(store, settings)
    refresh = RefreshTokens(engine, sessions, issuer, settings)
    server = YihaoServer(clients, issuer)
    server.refresh = refresh
    passwords = Passwords(settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism,
                          settings.argon2_concurrency or cpu_share(settings.workers))
    accounts = Accounts(engine, passwords, store)
    server.accounts = accounts
    grant = type("CodeGrant", (AuthorizationCodeGrant,), {"store": store, "code_ttl": settings.code_ttl,
                                                 "reuse_ttl": settings.access_token_ttl + 60})
    server.register_grant(grant, [PkceS256(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    for method in (PrivateKeyJwt, ClientSecretJwt):  # RFC 7523 §2.2
        server.register_client_auth_method(method.CLIENT_AUTH_METHOD,
                                           method(clients, client_keys, store, settings.issuer))
    vault = open_vault(settings, master)
    devices = DeviceCodes(store, settings.device_code_ttl, settings.device_poll_interval)
    server.register_grant(type("KioskGrant", (DeviceCodeGrant,), {"devices": devices}))
    server.register_endpoint(DeviceAuthorization(server, devices, f"{settings.issuer}/device"))
    federation = Federation(engine, master, store, timeout=settings.upstream_timeout_ms / 1000)
    identities = Identities(engine, vault, changed=accounts.changed)
    entities = open_legal_entity_registry(engine, vault)
    trust = TrustStore(engine, store)
    revocation = Revocation(store, HttpCrlSource(settings.crl_timeout_ms / 1000, settings.crl_max_bytes))
    certificates = CertificateLogin(store=store, trust=trust, revocation=revocation, identities=identities,
                                    entities=entities, accounts=accounts, engine=engine,
                                    challenge_ttl=settings.cert_challenge_ttl)
    server.register_client_auth_method("tls_client_auth", tls_client_auth(certificates))
    server.partners = federation.partners
    server.partner_tokens = Tokens(issuer, federation, store, acr_scheme(settings.acr_values))
    server.register_grant(TokenExchangeGrant)
    server.register_grant(JwtBearerGrant)
    core = Core(settings=settings, engine=engine, store=store, master=master, keys=keys, clients=clients,
                accounts=accounts, consents=Consents(engine), sessions=sessions,
                issuer=issuer, refresh=refresh, server=server, vault=vault, identities=identities,
                population=open_population_registry(settings, engine, vault), entities=entities,
                throttle=Throttle.from_settings(store, settings), trust=trust, certificates=certificates,
                audit=audit, dpop=DPoP(store, master.derive("dpop-nonce"), max_age=settings.dpop_proof_max_age,
                                       require_nonce=settings.dpop_nonce), devices=devices, federation=federation,
                factors=SecondFactors(Totp(engine, store, master), Passkeys(engine, store, settings.issuer)),
                client_keys=client_keys, fetcher=fetcher, checkpointer=checkpointer)
    core.local_io = isinstance(store, MemoryStore) and engine.dialect.name == "sqlite"
    core.verification = server.verification = Verification(core)
    core.enterprises = server.enterprises = Enterprises(core)
    server.consents, server.trust_framework = core.consents, settings.trust_framework
    return core
