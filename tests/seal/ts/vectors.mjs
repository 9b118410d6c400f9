// Seal interop with Mysten's TypeScript SDK (the version pinned in package.json / package-lock.json).
//   node vectors.mjs sign            -> JSON signatures made by the SDK's keypairs, on stdout
//   node vectors.mjs verify < cases  -> for each {message_b64, signature}: what verifyPersonalMessageSignature says
// Keys come from fixed seeds, messages are fixed, and all three schemes sign deterministically
// (ed25519; RFC 6979 for ECDSA), so `sign` prints the same vectors on every run.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ed25519Keypair } from '@mysten/sui/keypairs/ed25519';
import { Secp256k1Keypair } from '@mysten/sui/keypairs/secp256k1';
import { Secp256r1Keypair } from '@mysten/sui/keypairs/secp256r1';
import { verifyPersonalMessageSignature } from '@mysten/sui/verify';

const KEYPAIRS = { ed25519: Ed25519Keypair, secp256k1: Secp256k1Keypair, secp256r1: Secp256r1Keypair };
const seed = (label) => createHash('sha256').update(`k3sdaas seal vector ${label}`).digest();

function messages(address) {
  const challenge = [
    'K3s-DaaS seal proof v1',
    'nonce: q7Yx2sV9nLm4Tb8Rk1Wc3A',
    'audience: https://master.k3sdaas.example:6443',
    `token_id: 0x${'ab'.repeat(32)}`,
    `address: ${address}`,
    'issued_at_ms: 1764579600000',
  ].join('\n');
  return [
    ['challenge', Buffer.from(challenge, 'utf8')],
    ['empty', Buffer.alloc(0)],
    ['utf8', Buffer.from('Grüße, 世界 — seal ✓', 'utf8')],
    ['len127', Buffer.alloc(127, 0x61)], // largest one-byte ULEB128 length
    ['len128', Buffer.alloc(128, 0x62)], // smallest two-byte ULEB128 length
    ['bytes256', Buffer.from([...Array(256).keys()])],
  ];
}

async function sign() {
  const vectors = [];
  for (const [scheme, Keypair] of Object.entries(KEYPAIRS)) {
    const keypair = Keypair.fromSecretKey(seed(scheme));
    for (const [name, message] of messages(keypair.toSuiAddress())) {
      const { bytes, signature } = await keypair.signPersonalMessage(message);
      vectors.push({
        name: `${scheme}/${name}`, scheme, secret_key: keypair.getSecretKey(),
        address: keypair.toSuiAddress(), message_b64: bytes, signature,
      });
    }
  }
  return vectors;
}

async function verify(cases) {
  const results = [];
  for (const c of cases) {
    try {
      const publicKey = await verifyPersonalMessageSignature(Buffer.from(c.message_b64, 'base64'), c.signature);
      results.push({ name: c.name, valid: true, address: publicKey.toSuiAddress() });
    } catch (err) {
      results.push({ name: c.name, valid: false, error: String(err.message ?? err) });
    }
  }
  return results;
}

const mode = process.argv[2];
if (mode === 'sign') {
  process.stdout.write(JSON.stringify(await sign(), null, 1) + '\n');
} else if (mode === 'verify') {
  process.stdout.write(JSON.stringify(await verify(JSON.parse(readFileSync(0, 'utf8')))) + '\n');
} else {
  process.stderr.write('usage: node vectors.mjs sign | verify < cases.json\n');
  process.exit(1);
}
