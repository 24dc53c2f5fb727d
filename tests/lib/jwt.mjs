// jwt.mjs — access tokens for fanout's tests: keys generated with the
// openssl command (RSA 2048, EC P-256) into a temp dir, and compact JWS
// tokens signed with node's crypto (HS256, RS256, ES256 as JOSE wants it:
// R||S, not DER), or unsigned / with any header a test needs.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { run, tmpDir } from './harness.mjs';

const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');

export const now = () => Math.floor(Date.now() / 1000);

/** Generate keys with openssl; returns paths and PEM texts. */
export async function makeKeys() {
  const dir = tmpDir('fanout-keys-');
  const p = (n) => path.join(dir, n);
  const ssl = async (...a) => {
    const r = await run('openssl', a);
    if (r.code !== 0) throw new Error(`openssl ${a.join(' ')}: ${r.stderr}`);
  };
  await ssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', p('rsa.pem'));
  await ssl('pkey', '-in', p('rsa.pem'), '-pubout', '-out', p('rsa.pub'));
  await ssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p('ec.pem'));
  await ssl('pkey', '-in', p('ec.pem'), '-pubout', '-out', p('ec.pub'));
  const read = (n) => fs.readFileSync(p(n), 'utf8');
  return {
    dir,
    rsaPriv: read('rsa.pem'), rsaPub: read('rsa.pub'), rsaPubPath: p('rsa.pub'), rsaPrivPath: p('rsa.pem'),
    ecPriv: read('ec.pem'), ecPub: read('ec.pub'), ecPubPath: p('ec.pub'),
  };
}

/** A token with header alg and claims, signed with key (string secret or PEM). */
export function sign(alg, key, claims, header = { alg, typ: 'JWT' }) {
  const si = b64(header) + '.' + b64(claims);
  let sig;
  if (alg === 'HS256') sig = crypto.createHmac('sha256', key).update(si).digest('base64url');
  else if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(si), key).toString('base64url');
  else if (alg === 'ES256')
    sig = crypto.sign('sha256', Buffer.from(si), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  else if (alg === 'none') sig = '';
  else throw new Error('alg ' + alg);
  return si + '.' + sig;
}

export const hs = (secret, claims) => sign('HS256', secret, claims);
