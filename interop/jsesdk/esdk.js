'use strict'
// Runs a batch of encrypt and decrypt jobs with the official AWS Encryption
// SDK for JavaScript, for keystack's interop tests (cmd/keystack/jsesdk_test.go).
//
//   node esdk.js MODULES_DIR JOBS.json   → one JSON result per job on stdout
//
// MODULES_DIR holds node_modules/@aws-crypto/client-node (installed by
// scripts/test-prereqs.sh from package-lock.json). JOBS.json is
//   {"keys": {ID: {"type": "aes"|"rsa", "namespace", "name", "file", "padding"}},
//    "jobs": [{"op": "encrypt"|"decrypt", "keys": [ID...], "in", "out",
//              "suite", "frameLength", "context", "legacy", "localeSorting"}]}
// AES key files hold the key in base64, RSA key files a PKCS#8 PEM private
// key; key material never appears in argv. A job's first key generates the
// data key and every key wraps it (the SDK's multi-keyring); on decrypt any
// of them may unwrap. "legacy" uses the FORBID_ENCRYPT_ALLOW_DECRYPT
// commitment policy (v1 suites), else REQUIRE_ENCRYPT_REQUIRE_DECRYPT.
// "localeSorting" keeps the raw AES keyring's default context order
// (String.localeCompare) instead of the UTF-8 order the other SDKs use.
// A result is {"ok": true, "suite", "frameLength", "context", "version"}
// (the header as the SDK parsed or wrote it) or {"ok": false, "error"}.

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const { createRequire } = require('module')

const esdk = createRequire(path.join(path.resolve(process.argv[2]), 'package.json'))('@aws-crypto/client-node')
const {
  RawAesKeyringNode, RawAesWrappingSuiteIdentifier, RawRsaKeyringNode, MultiKeyringNode,
  buildClient, CommitmentPolicy
} = esdk

const clients = {
  committing: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
  legacy: buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
}

const aesSuites = {
  16: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  24: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  32: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING
}

const rsaPaddings = {
  'oaep-sha1': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
  'oaep-sha256': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
  'oaep-sha384': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' },
  'oaep-sha512': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' },
  pkcs1: { padding: crypto.constants.RSA_PKCS1_PADDING }
}

function keyring (spec, localeSorting) {
  const material = fs.readFileSync(spec.file, 'utf8')
  const ids = { keyNamespace: spec.namespace, keyName: spec.name }
  if (spec.type === 'aes') {
    // The SDK wants the key in a buffer of its own, not a slice of Node's pool.
    const key = new Uint8Array(Buffer.from(material.trim(), 'base64'))
    if (!aesSuites[key.length]) throw new Error(`${spec.file}: AES key of ${key.length} bytes`)
    return new RawAesKeyringNode({
      ...ids, unencryptedMasterKey: key, wrappingSuite: aesSuites[key.length], utf8Sorting: !localeSorting
    })
  }
  if (spec.type === 'rsa') {
    const pad = rsaPaddings[spec.padding]
    if (!pad) throw new Error(`unknown RSA padding ${spec.padding}`)
    const publicKey = crypto.createPublicKey(material).export({ type: 'spki', format: 'pem' })
    return new RawRsaKeyringNode({ ...ids, ...pad, rsaKey: { privateKey: material, publicKey } })
  }
  throw new Error(`unknown key type ${spec.type}`)
}

function jobKeyring (job, keys) {
  const rings = job.keys.map((id) => {
    if (!keys[id]) throw new Error(`unknown key ${id}`)
    return keyring(keys[id], job.localeSorting)
  })
  if (rings.length === 1) return rings[0]
  return new MultiKeyringNode({ generator: rings[0], children: rings.slice(1) })
}

function describe (h) {
  return {
    ok: true, suite: h.suiteId, frameLength: h.frameLength, context: h.encryptionContext, version: h.version
  }
}

async function runJob (job, keys) {
  const client = job.legacy ? clients.legacy : clients.committing
  const kr = jobKeyring(job, keys)
  const input = fs.readFileSync(job.in)
  if (job.op === 'encrypt') {
    const { result, messageHeader } = await client.encrypt(kr, input, {
      suiteId: job.suite, frameLength: job.frameLength, encryptionContext: job.context || {}
    })
    fs.writeFileSync(job.out, result)
    return describe(messageHeader)
  }
  if (job.op === 'decrypt') {
    const { plaintext, messageHeader } = await client.decrypt(kr, input)
    fs.writeFileSync(job.out, plaintext)
    return describe(messageHeader)
  }
  throw new Error(`unknown op ${job.op}`)
}

async function main () {
  const { keys, jobs } = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'))
  const results = []
  for (const job of jobs) {
    try {
      results.push(await runJob(job, keys))
    } catch (err) {
      results.push({ ok: false, error: String(err && err.message ? err.message : err) })
    }
  }
  process.stdout.write(JSON.stringify(results))
}

main().catch((err) => {
  process.stderr.write(`esdk.js: ${err && err.stack ? err.stack : err}\n`)
  process.exit(1)
})
