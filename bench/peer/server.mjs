// node-oidc-provider configured like Yihao for bench/tokens.py: one process, in-memory adapter,
// client_credentials with JWT access tokens (ES256 and RS256 through two resource servers), the code
// flow with rotating refresh tokens, introspection and userinfo.
//
// Usage: node server.mjs PORT CLIENTS_JSON
//   CLIENTS_JSON: {"es256": [id, secret], "rs256": [id, secret], "rp": [id, secret], "redirect_uri": uri}
// Prints one line "ready ISSUER" when it listens. /interaction/:uid signs the benchmark's account in
// and grants what was asked without a page: the benchmark's set-up drives it by HTTP to obtain
// refresh tokens; no measured figure goes through it.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const [port, clientsJson] = process.argv.slice(2);
const clients = JSON.parse(clientsJson);
const issuer = `http://127.0.0.1:${port}`;
const ACCOUNT = 'bench-user';
const RESOURCES = { [clients.es256[0]]: 'urn:bench:es256', [clients.rs256[0]]: 'urn:bench:rs256' };
const RESOURCE_ALG = { 'urn:bench:es256': 'ES256', 'urn:bench:rs256': 'RS256' };

function jwk(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), alg, use: 'sig', kid: `${alg}-${randomBytes(6).toString('hex')}` };
}

// The provider's bundled development adapter is an LRU of 1,000 entries: under thousands of grants a
// second it evicts live tokens. This one keeps everything until it expires, like a real store would.
const storage = new Map();
const grants = new Map();
class MemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    storage.set(this.key(id), { payload, expiresAt });
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
      grants.get(payload.grantId).add(this.key(id));
    }
    if (payload.uid) storage.set(`uid:${this.model}:${payload.uid}`, { payload: id, expiresAt });
    if (payload.userCode) storage.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
  }

  static get(key) {
    const entry = storage.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      storage.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  async find(id) { return MemoryAdapter.get(this.key(id)); }

  async findByUid(uid) {
    const id = MemoryAdapter.get(`uid:${this.model}:${uid}`);
    return id && this.find(id);
  }

  async findByUserCode(userCode) {
    const id = MemoryAdapter.get(`userCode:${userCode}`);
    return id && this.find(id);
  }

  async consume(id) {
    const payload = MemoryAdapter.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { storage.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) storage.delete(key);
    grants.delete(grantId);
  }
}
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of storage) if (entry.expiresAt <= now) storage.delete(key);
  for (const [grantId, members] of grants) {
    for (const key of members) if (!storage.has(key)) members.delete(key);
    if (members.size === 0) grants.delete(grantId);
  }
}, 10_000).unref();

const provider = new Provider(issuer, {
  adapter: MemoryAdapter,
  clients: [
    {
      client_id: clients.es256[0], client_secret: clients.es256[1], grant_types: ['client_credentials'],
      response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: clients.rs256[0], client_secret: clients.rs256[1], grant_types: ['client_credentials'],
      response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: clients.rp[0], client_secret: clients.rp[1], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], redirect_uris: [clients.redirect_uri], token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [jwk('ec', { namedCurve: 'P-256' }, 'ES256'), jwk('rsa', { modulusLength: 2048 }, 'RS256')] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'api'],
  claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'locale'], email: ['email', 'email_verified'] },
  findAccount: async (ctx, sub) => (sub === ACCOUNT ? {
    accountId: sub,
    claims: async () => ({
      sub, name: 'Bench User', preferred_username: ACCOUNT, locale: 'zh-CN', email: 'bench@example.org',
      email_verified: true,
    }),
  } : undefined),
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf ?? RESOURCES[client.clientId],
      useGrantedResource: async () => false,
      getResourceServerInfo: async (ctx, resource, client) => {
        const alg = RESOURCE_ALG[resource];
        if (!alg || RESOURCES[client.clientId] !== resource) throw new Provider.errors.InvalidTarget();
        return { scope: 'api', audience: resource, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
      },
    },
  },
  pkce: { required: () => true },
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  rotateRefreshToken: true,
  ttl: { AccessToken: 7200, ClientCredentials: 300, IdToken: 300, RefreshToken: 86400, Grant: 86400, Session: 86400 },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: ACCOUNT, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT }, consent: { grantId } },
    { mergeWithLastSubmission: false });
}

const callback = provider.callback();
createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 400;
      res.end(String(err));
    });
    return;
  }
  callback(req, res);
}).listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
