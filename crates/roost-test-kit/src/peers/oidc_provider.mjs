// A real OpenID provider for roost's tests: npm `oidc-provider` (a certified implementation) on
// 127.0.0.1, port 0. argv[2] is JSON: {"clients": [{client_id, client_secret, redirect_uris,
// token_endpoint_auth_method?}]}. Clients are "native" (RFC 8252): a loopback redirect URI matches
// on any port, so they can be registered before roost's port is known.
//
// Instead of the development login pages, one programmatic interaction route: GET
// /interaction/UID?login=EMAIL&verified=true|false signs in the account EMAIL (whose
// `email_verified` is as asked); a later GET /interaction/UID grants the consent asked for. The
// test drives it over plain HTTP with a cookie jar. Prints "PORT n" once it listens.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

// Notices printed after the port must never bring the provider down.
process.stdout.on('error', () => {});

const config = JSON.parse(process.argv[2] || '{"clients": []}');

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'roost-test-rs256', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

// An account id is `verified:EMAIL` or `unverified:EMAIL`.
async function findAccount(_ctx, id) {
  const at = id.indexOf(':');
  if (at < 0) return undefined;
  const email = id.slice(at + 1);
  return {
    accountId: id,
    async claims() {
      return { sub: id, email, email_verified: id.startsWith('verified:'), name: `Test ${email.split('@')[0]}` };
    },
  };
}

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    application_type: 'native',
    ...c,
  })),
  jwks: { keys: [signingKey] },
  findAccount,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The scopes' claims in the ID token itself, as Google, Okta and Keycloak put them.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
});

const app = provider.callback();

async function interaction(req, res, url) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  let result;
  if (prompt.name === 'login') {
    const email = url.searchParams.get('login');
    if (!email) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('login=EMAIL is required to sign in');
      return;
    }
    const verified = url.searchParams.get('verified') !== 'false';
    result = { login: { accountId: `${verified ? 'verified' : 'unverified'}:${email}` } };
  } else if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`unexpected prompt ${prompt.name}`);
    return;
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

server.on('request', (req, res) => {
  const url = new URL(req.url, issuer);
  if (!url.pathname.startsWith('/interaction/')) {
    app(req, res);
    return;
  }
  interaction(req, res, url).catch((e) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e && e.stack ? e.stack : e));
  });
});

console.log(`PORT ${port}`);
