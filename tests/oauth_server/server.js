// A real OAuth 2.0 / OpenID authorization server (oidc-provider 9) for authsome's tests.
//
// Usage: node server.js [PORT]   (PORT 0 or absent: an ephemeral port; env OAUTH_TEST_PORT also works)
// Prints one line `READY <issuer>` on stdout once it accepts connections.
//
// Enabled: authorization code with PKCE (S256, required), device flow (RFC 8628), dynamic
// client registration (RFC 7591), refresh tokens with rotation, revocation (RFC 7009),
// introspection (RFC 7662). Listens on 127.0.0.1 only.
//
// Test-only endpoints (no authentication: this server never leaves loopback):
//   GET  /__test/state   -> {config, counts}
//   POST /__test/config  JSON body merged into the config below, e.g.
//        {"interaction": "approve"|"deny"|"html", "account": "alice", "access_token_ttl": 60,
//         "device_code_ttl": 600, "device_interval": 1, "slow_down": 2, "fail_token": 1}
//   POST /__test/reset   -> config and counts back to the defaults
// Interaction modes: "approve" signs in `account` and grants every requested scope without HTML,
// "deny" answers access_denied, "html" shows oidc-provider's own login and consent pages.

import * as fs from 'node:fs';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const DEFAULT_CONFIG = Object.freeze({
  interaction: 'approve',
  account: 'alice',
  access_token_ttl: 3600,
  refresh_token_ttl: 14 * 24 * 3600,
  device_code_ttl: 600,
  device_interval: 1, // seconds returned in device authorization responses
  slow_down: 0, // answer this many next device-code polls with slow_down
  fail_token: 0, // answer this many next token requests with HTTP 503
});

let config = { ...DEFAULT_CONFIG };
let counts = {};

function resetCounts() {
  counts = {
    grants: {}, // grant_type -> successful token responses
    grant_errors: {}, // "<grant_type>:<error>" -> count
    refresh_token_grants: 0,
    revocations: 0,
    registrations: 0,
  };
}
resetCounts();

function bump(table, key) {
  table[key] = (table[key] || 0) + 1;
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const GRANT_TYPES = ['authorization_code', 'refresh_token', DEVICE_GRANT];

export const CLIENTS = [
  {
    // A public native client: any loopback port is accepted for its redirect URIs (RFC 8252).
    client_id: 'authsome-public',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
  {
    // A public web client that accepts only the fixed loopback redirect authsome uses by default.
    client_id: 'authsome-fixed-port',
    application_type: 'web',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1:7999/callback'],
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
  {
    client_id: 'authsome-confidential',
    client_secret: 'confidential-test-secret-0123456789',
    application_type: 'native',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: ['http://127.0.0.1/callback'],
    grant_types: GRANT_TYPES,
    response_types: ['code'],
  },
  {
    // What a resource server would use to introspect tokens; tests use it too.
    client_id: 'test-resource-server',
    client_secret: 'resource-server-test-secret-0123456789',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [],
    grant_types: [],
    response_types: [],
  },
];

function parsePort() {
  const raw = process.argv[2] ?? process.env.OAUTH_TEST_PORT ?? '0';
  const port = Number.parseInt(raw, 10);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port ${raw}`);
  }
  return port;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: CLIENTS,
    scopes: ['openid', 'offline_access', 'read', 'write'],
    claims: { openid: ['sub'] },
    cookies: { keys: ['authsome-test-cookie-key-not-a-secret'] },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      registration: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => config.access_token_ttl,
      RefreshToken: () => config.refresh_token_ttl,
      DeviceCode: () => config.device_code_ttl,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 3600,
      Grant: 14 * 24 * 3600,
      IdToken: 3600,
    },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
  });

  provider.on('grant.success', (ctx) => {
    const grantType = ctx.oidc.params.grant_type;
    bump(counts.grants, grantType);
    if (grantType === 'refresh_token') counts.refresh_token_grants += 1;
  });
  provider.on('grant.error', (ctx, err) => {
    bump(counts.grant_errors, `${ctx.oidc.params?.grant_type}:${err.error}`);
  });
  provider.on('registration_create.success', () => {
    counts.registrations += 1;
  });

  provider.use(testEndpoints);
  provider.use(tokenEndpointKnobs);
  provider.use(deviceIntervalKnob);
  provider.use(autoInteractions);
  return provider;
}

async function testEndpoints(ctx, next) {
  if (!ctx.path.startsWith('/__test/')) return next();
  if (ctx.method === 'GET' && ctx.path === '/__test/state') {
    ctx.body = { config, counts };
    return undefined;
  }
  if (ctx.method === 'POST' && ctx.path === '/__test/config') {
    const update = await readJson(ctx.req);
    for (const key of Object.keys(update)) {
      if (!(key in DEFAULT_CONFIG)) ctx.throw(400, `unknown config key ${key}`);
    }
    config = { ...config, ...update };
    ctx.body = { config };
    return undefined;
  }
  if (ctx.method === 'POST' && ctx.path === '/__test/reset') {
    config = { ...DEFAULT_CONFIG };
    resetCounts();
    ctx.body = { config };
    return undefined;
  }
  ctx.throw(404);
  return undefined;
}

// Failure injection on the token endpoint: transient 503s and device-flow slow_down.
async function tokenEndpointKnobs(ctx, next) {
  if (ctx.method !== 'POST' || ctx.path !== '/token') return next();
  if (config.fail_token > 0) {
    config.fail_token -= 1;
    ctx.status = 503;
    ctx.body = { error: 'temporarily_unavailable', error_description: 'injected by the test server' };
    return undefined;
  }
  if (config.slow_down > 0 && ctx.is('application/x-www-form-urlencoded')) {
    // Peek at the grant type without consuming the body oidc-provider still has to read.
    const raw = await readRaw(ctx);
    const grantType = new URLSearchParams(raw).get('grant_type');
    if (grantType === DEVICE_GRANT) {
      config.slow_down -= 1;
      bump(counts.grant_errors, `${DEVICE_GRANT}:slow_down`);
      ctx.status = 400;
      ctx.body = { error: 'slow_down', error_description: 'injected by the test server' };
      return undefined;
    }
  }
  return next();
}

async function readRaw(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  // The stream is consumed now; oidc-provider's body parser then reads req.body instead.
  ctx.req.body = text;
  return text;
}

async function deviceIntervalKnob(ctx, next) {
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token/revocation' && ctx.status === 200) {
    counts.revocations += 1; // oidc-provider emits no event for revocation
  }
  if (ctx.method === 'POST' && ctx.path === '/device/auth' && ctx.status === 200 && ctx.body) {
    ctx.body = { ...ctx.body, interval: config.device_interval };
  }
}

// Answers GET /interaction/:uid without HTML in the "approve" and "deny" modes.
async function autoInteractions(ctx, next) {
  const match = /^\/interaction\/([^/]+)$/.exec(ctx.path);
  if (ctx.method !== 'GET' || !match || config.interaction === 'html') return next();
  const { provider } = ctx.oidc ?? { provider: ctx.app };
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (config.interaction === 'deny') {
    result = { error: 'access_denied', error_description: 'End-User denied the request' };
  } else if (details.prompt.name === 'login') {
    result = { login: { accountId: config.account } };
  } else if (details.prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    ctx.throw(501, `prompt ${details.prompt.name} not handled`);
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: config.interaction !== 'deny',
  });
  ctx.status = 303;
  ctx.redirect(returnTo);
  return undefined;
}

function main() {
  const server = http.createServer();
  server.listen(parsePort(), '127.0.0.1', () => {
    const { port } = server.address();
    const issuer = `http://127.0.0.1:${port}`;
    const provider = makeProvider(issuer);
    server.on('request', provider.callback());
    process.stdout.write(`READY ${issuer}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Exit when the parent (the pytest fixture) goes away and closes the pipe on our stdin.
  if (fs.fstatSync(0).isFIFO()) {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
}

main();
