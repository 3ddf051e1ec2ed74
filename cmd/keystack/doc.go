// Command keystack encrypts and decrypts files in the AWS Encryption SDK
// message format (v2, byte for byte), with master keys held in a local
// keystore, AWS KMS or a PKCS#11 HSM.
//
// Usage:
//
//	keystack init                      create the keystore
//	keystack key create NAME           create a master key
//	keystack key list | show | import  manage master keys
//	keystack encrypt -k NAME -i IN -o OUT
//	keystack decrypt -i IN -o OUT
//	keystack inspect FILE              show a message header; needs no keystore
//
// The keystore lives in --home, else $KEYSTACK_HOME, else the platform
// default. Its passphrase comes from --passphrase-file, else
// $KEYSTACK_PASSPHRASE, else a prompt on the terminal; never from argv.
//
// # Builds
//
// Built with the tag keystack_lite (make build, make install), keystack
// links no AWS SDK client and no PKCS#11 library, is static and starts
// faster; it execs keystack-full, the complete build in its own
// directory, for a command that may need AWS KMS, PKCS#11 or a key
// server, before reading or writing anything (handoff.go).
//
// # Output files
//
// Outputs are written to a temporary file beside the target (unnamed on
// Linux, so that even SIGKILL leaves nothing) and published only when
// complete, so a failed or interrupted run leaves no partial file; an
// existing character device, FIFO or socket is written in place as a
// stream, like stdout, and never replaced. The file and its directory are
// fsynced before the rename, so a crash never publishes a torn file (--sync
// batch does this with one flush per filesystem for up to 1024 outputs of a
// tree; --sync none skips it, as cp does). An existing regular file is
// never replaced without --force, and nothing else ever is. Decrypting to a
// file publishes the plaintext only after the whole message authenticated.
// Decrypting to stdout streams: each frame is authenticated before its
// plaintext is written, but a message that fails later may already have
// emitted its earlier, authentic frames (as with the AWS Encryption CLI);
// --buffer writes nothing until the whole message authenticated.
//
// encrypt refuses to write ciphertext to a terminal unless -o - asks for it.
//
// With --recursive DIR --output-dir OUT, encrypt mirrors the tree writing
// NAME.ks for each file, and decrypt mirrors it removing the .ks suffix
// (files without it are skipped); --suffix sets another. With --json,
// metadata goes to stdout, or to stderr when stdout carries the data (-o -).
//
// # Exit codes
//
//	0    success
//	1    general or I/O error, including a decision the audit log could
//	     not record (the operation is refused)
//	2    usage error: bad flags, missing or extra arguments
//	3    the input failed to authenticate or decrypt: wrong or missing key,
//	     encryption context mismatch or missing required context, tampered,
//	     truncated or malformed message; or a damaged audit log (edited, cut
//	     below its anchor, deleted, replaced), which refuses every operation
//	     (in server mode also: credentials the key server refused, or a
//	     server TLS certificate that did not verify)
//	4    key or keystore error: key not found, bad passphrase, invalid key,
//	     the message's key version disabled, destroyed or below the minimum
//	5    access denied by policy
//	6    key backend unavailable: KMS did not answer (--kms-timeout bounds
//	     each call, default 10s), the PKCS#11 module or token could not
//	     be opened, or the --storage database did not answer; the key may
//	     be fine, and trying later may work
//	7    the command needs keystack-full (AWS KMS, PKCS#11, a key server,
//	     --storage, keystack server, rotate), which the
//	     lite build hands it to, and it is missing, not executable or not
//	     the complete build; nothing was read or written
//	130  interrupted by SIGINT (143 for SIGTERM, 129 for SIGHUP)
//
// The codes come from one table in tui.go (exitClasses). When no key
// decrypts a message, the most specific cause among the keys tried picks
// the message, hint and code: a refusal, an unavailable backend, a key
// version's state, then a data key that did not authenticate with the
// context given.
package main
