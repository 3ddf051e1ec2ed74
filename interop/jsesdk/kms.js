'use strict'
// Encrypts or decrypts one file with the official AWS Encryption SDK for
// JavaScript's KMS keyring, its KMS client pointed at a keystack server,
// for keystack's interop tests (cmd/keystack/server_jsesdk_test.go).
//
//   node kms.js MODULES_DIR encrypt|decrypt KEY_ARN IN OUT [CONTEXT_JSON]
//
// The endpoint comes from $KEYSTACK_KMS_ENDPOINT, the Region from
// $AWS_REGION and the access key from $AWS_ACCESS_KEY_ID and
// $AWS_SECRET_ACCESS_KEY (a key issued by `keystack server credentials`).
// Decrypt checks that every pair of CONTEXT_JSON is in the message.

const fs = require('fs')
const path = require('path')
const { createRequire } = require('module')

const req = createRequire(path.join(path.resolve(process.argv[2]), 'package.json'))
const { KmsKeyringNode, buildClient, CommitmentPolicy } = req('@aws-crypto/client-node')
const { KMS } = req('@aws-sdk/client-kms')

async function main () {
  const [op, arn, input, output, ctxJSON] = process.argv.slice(3)
  const context = ctxJSON ? JSON.parse(ctxJSON) : {}
  const clientProvider = (region) => new KMS({
    region, endpoint: process.env.KEYSTACK_KMS_ENDPOINT, maxAttempts: 1,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY }
  })
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const data = fs.readFileSync(input)
  if (op === 'encrypt') {
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: arn })
    const { result } = await encrypt(keyring, data, { encryptionContext: context })
    fs.writeFileSync(output, result)
    return
  }
  const keyring = new KmsKeyringNode({ clientProvider, keyIds: [arn] })
  const { plaintext, messageHeader } = await decrypt(keyring, data)
  for (const [k, v] of Object.entries(context)) {
    if (messageHeader.encryptionContext[k] !== v) throw new Error('encryption context mismatch on ' + k)
  }
  fs.writeFileSync(output, plaintext)
}

main().catch((e) => { console.error(String(e && e.message ? e.message : e)); process.exit(1) })
