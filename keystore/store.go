package keystore

import (
	"bytes"
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keystack/keystack/internal/gatewire"

	"github.com/keystack/keystack/gate"
	"github.com/keystack/keystack/internal/serverstore"
	"github.com/keystack/keystack/keyring"
	"github.com/keystack/keystack/policy"
)

// Store is the local key store: a directory (mode 0700) holding
//
//   - keystore.json (mode 0600): the format version, whether the store is
//     insecure, the passphrase KDF (argon2id per RFC 9106 or scrypt per
//     RFC 7914) with its salt, a passphrase verifier, and every key's
//     metadata. Each key version's material is stored inline, sealed with
//     AES-256-GCM under the passphrase-derived key-encryption key with the
//     key name and version as additional data, so blobs cannot be swapped.
//     Insecure stores (InitOptions.Insecure) keep material unsealed and say
//     so in the file.
//   - keystore.lock: the flock(2) target serializing writers.
//
// Every write rereads keystore.json under the lock and replaces it
// atomically, so concurrent processes never lose each other's keys. Readers
// need no lock. A Store is safe for concurrent use.
type Store struct {
	dir        string
	st         Storage // the persistent state; see storage.go
	snap       snapshot
	unseals    atomic.Int64 // key versions unsealed, for tests
	now        func() time.Time
	passphrase func() ([]byte, error)
	tries      int // OpenOptions.PassphraseTries
	backends   map[string]Backend
	principal  string
	gate       *gate.Gate        // decides and records every operation; see store_gate.go
	enf        gatewire.Enforcer // gate as the Store asks it
	cacheOpts  *keyring.CacheOptions
	cacheMu    sync.Mutex
	caches     map[string]*keyring.Caching
	minWait    time.Duration // least destruction waiting period; see OpenOptions

	mu     sync.Mutex
	kek    []byte // derived on first need; nil until then
	reread bool   // OpenOptions.RereadPassphrase
	stale  []byte // the verifier the passphrase source last failed to open after a reseal
}

// storeFormat is the keystore.json format version this code writes and reads.
const storeFormat = 1

type storeFile struct {
	Format   int                   `json:"format"`
	Insecure bool                  `json:"insecure,omitempty"`
	KDF      *kdfParams            `json:"kdf,omitempty"`
	Verifier []byte                `json:"verifier,omitempty"`
	Seal     *sealRecord           `json:"seal,omitempty"` // auto-unseal; see seal_auto.go
	Keys     map[string]*keyRecord `json:"keys"`
	Server   *serverState          `json:"server,omitempty"` // key server state; see server_state.go
	gatewire.Config
}

// InitOptions configures a new store.
type InitOptions struct {
	// Passphrase seals the key material. It is required unless Insecure is
	// set, and is not retained.
	Passphrase []byte
	// Insecure stores key material unsealed. It must be asked for explicitly
	// and excludes Passphrase.
	Insecure bool
	// KDF is "argon2id" (the default) or "scrypt".
	KDF string
	// Owner is the principal the default policy grants everything
	// ("user:alice"); empty means the current OS user.
	Owner string
	// TrustPrincipalEnv lets Open take the principal from
	// $KEYSTACK_PRINCIPAL (OpenOptions.PrincipalFromEnv; for tests and CI).
	TrustPrincipalEnv bool
	// Storage keeps the new store's state and policy documents; nil means
	// the directory's. Init fails with ErrExists when it already holds a
	// state document.
	Storage Storage
	// Audit is where Init and the returned Store record their decisions;
	// nil means audit.log in dir, after a log an earlier store left there
	// is set aside. Give a store in a database the database's audit
	// (pgaudit.Destination), as Open is given: nothing then goes to dir.
	Audit gate.AuditDestination
}

// OpenOptions configures access to an existing store.
type OpenOptions struct {
	// Passphrase is called at most once per Store, and only when sealed key
	// material is first needed; the slice it returns is zeroed after use.
	// On a wrong passphrase it is called again at the next need.
	Passphrase func() ([]byte, error)
	// PassphraseTries is how many times Passphrase is called in a row while
	// it returns a wrong passphrase (an interactive prompt asks again);
	// 0 means once. Each wrong passphrase is audited.
	PassphraseTries int
	// Backends builds keyrings for keys held outside the store, by backend
	// name ("aws-kms", "pkcs11").
	Backends map[string]Backend
	// Now is the clock for creation times and history; time.Now by default.
	Now func() time.Time
	// Principal is who the caller acts as ("user:alice"); every operation
	// is authorized for it.
	Principal string
	// Authorizer decides every operation. When nil, Open builds the
	// store's policy engine: policy.json in the store directory, else
	// policy.DefaultPolicy of the owner recorded at Init, with groups and
	// tags from keystore.json's "principals" section, recording every
	// decision in audit.log (package gate; Store.Gate).
	Authorizer policy.Authorizer
	// AuditSync fsyncs every audit record before the operation proceeds;
	// by default records are fsynced in batches.
	AuditSync bool
	// MinDestructionWait is the least waiting period
	// ScheduleVersionDestruction accepts; 0 means DefaultMinDestructionWait
	// (7 days). Tests lower it.
	MinDestructionWait time.Duration
	// Cache, when set, caches data keys per key version (ESDK caching CMM)
	// behind the authorization of each message, so a cache hit is still
	// decided by the policy and audited.
	Cache *keyring.CacheOptions
	// PrincipalFromEnv, with Principal empty, acts as $KEYSTACK_PRINCIPAL
	// when the store was initialized to trust it (see PrincipalEnv),
	// without reading the store a second time.
	PrincipalFromEnv bool
	// RereadPassphrase lets a long-running process (keystack server) call
	// Passphrase again when another process resealed the store (passphrase
	// change or seal change) after it unlocked: a passphrase file the
	// administrator updated then keeps it serving without a restart. Set it
	// only for a source that does not prompt. An auto-unsealed store always
	// asks its master key again.
	RereadPassphrase bool
	// Storage keeps the store's state and policy documents; nil means the
	// directory's (newDirStorage(dir)). The audit log stays in dir unless
	// Audit is set.
	Storage Storage
	// Audit is where the store records its decisions; nil means audit.log
	// in dir (gate.FileAudit). Replicas on one database each append to
	// their own chain there (pgaudit.Destination).
	Audit gate.AuditDestination
}

// Init creates a store in dir, creating dir if needed and setting its mode to 0700. It fails with ErrExists
// when dir already holds one, and with ErrBadPassphrase when a sealed store
// is asked for without a passphrase.
func Init(dir string, opts InitOptions) (*Store, error) {
	if opts.Insecure && len(opts.Passphrase) > 0 {
		return nil, fmt.Errorf("%w: an insecure store takes no passphrase", ErrInvalidOptions)
	}
	if !opts.Insecure && len(opts.Passphrase) == 0 {
		return nil, fmt.Errorf("%w: empty passphrase (an unsealed store needs Insecure)", ErrBadPassphrase)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("keystore: init: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // a pre-existing dir may be group-readable
		return nil, fmt.Errorf("keystore: init: %w", err)
	}
	st := opts.Storage
	if st == nil {
		st = newDirStorage(dir)
	}
	unlock, err := st.Lock(context.Background())
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := checkNoStore(st, dir); err != nil {
		return nil, err
	}
	f, kek, err := newStoreFile(opts)
	if err == nil {
		f.Config, err = gatewire.NewConfig(opts.Owner, opts.TrustPrincipalEnv)
	}
	if err == nil && opts.Audit == nil { // a log left by an earlier store in dir is not this one's
		_, err = gate.FileAudit(dir).SetAside(context.Background(), "previous", time.Now())
	}
	if err != nil {
		clear(kek)
		return nil, err
	}
	s := &Store{dir: dir, st: st, now: time.Now, kek: kek, principal: f.Owner}
	_, err = s.writeState(context.Background(), f, NoRevision)
	if err == nil {
		err = s.openGate(context.Background(), OpenOptions{Audit: opts.Audit})
	}
	if err != nil {
		clear(kek)
		return nil, err
	}
	return s, nil
}

// checkNoStore fails with ErrExists when st already holds a store.
func checkNoStore(st Storage, dir string) error {
	if _, ok := st.(*dirStorage); !ok {
		rev, err := st.Revision(context.Background(), StateDocument)
		if err == nil && rev != NoRevision {
			return fmt.Errorf("%w in its storage", ErrExists)
		}
		return err
	}
	if _, err := os.Lstat(filepath.Join(dir, metaFile)); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			return fmt.Errorf("%w in %s", ErrExists, dir)
		}
		return fmt.Errorf("keystore: init: %w", err)
	}
	return nil
}

func newStoreFile(opts InitOptions) (*storeFile, []byte, error) {
	f := &storeFile{Format: storeFormat, Insecure: opts.Insecure, Keys: map[string]*keyRecord{}}
	if opts.Insecure {
		if opts.KDF != "" {
			return nil, nil, fmt.Errorf("%w: an insecure store has no KDF", ErrInvalidOptions)
		}
		return f, nil, nil
	}
	p, err := newKDFParams(opts.KDF)
	if err != nil {
		return nil, nil, err
	}
	kek, err := p.deriveKEK(opts.Passphrase)
	if err != nil {
		return nil, nil, err
	}
	if f.Verifier, err = newVerifier(kek); err != nil {
		clear(kek)
		return nil, nil, err
	}
	f.KDF = &p
	return f, kek, nil
}

// Open opens the store in dir without asking for the passphrase; it fails
// with ErrNotInitialized when dir holds no store and ErrCorruptStore when
// keystore.json is malformed.
func Open(dir string, opts OpenOptions) (*Store, error) {
	st := opts.Storage
	if st == nil {
		st = newDirStorage(dir)
	}
	s := &Store{dir: dir, st: st, now: opts.Now, passphrase: opts.Passphrase, tries: opts.PassphraseTries, backends: opts.Backends,
		principal: opts.Principal, cacheOpts: opts.Cache, minWait: opts.MinDestructionWait,
		reread: opts.RereadPassphrase}
	if s.now == nil {
		s.now = time.Now
	}
	ctx := s.readOnce(context.Background()) // Open and its gate check the state once
	f, err := s.view(ctx)
	if err != nil {
		return nil, err
	}
	if opts.PrincipalFromEnv && s.principal == "" && f.TrustPrincipalEnv {
		s.principal = os.Getenv(PrincipalEnv)
	}
	if err := s.openGate(ctx, opts); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close forgets the cached key-encryption key and closes the audit log,
// writing its closing checkpoint. Later operations are refused (the
// decision can no longer be recorded).
func (s *Store) Close() error {
	s.mu.Lock()
	clear(s.kek)
	s.kek = nil
	s.mu.Unlock()
	err := s.enf.Close() // first: it reads the state as parsed to advance the audit anchor
	s.snap.mu.Lock()
	s.snap.parsed, s.snap.aeads, s.snap.creds = nil, nil, nil // drop the unsealed versions and secrets
	s.snap.mu.Unlock()
	return err
}

// snapshot is the state document as last read or written, so that a
// command reads it once: later loads parse it again (each caller gets its
// own copy to change) after a revision check, and read it again only when
// another writer changed it.
type snapshot struct {
	mu     sync.Mutex
	data   []byte
	rev    Revision
	parsed *storeFile                         // data parsed, shared read-only by view; nil until needed
	aeads  map[versionID]cipher.AEAD          // unsealed versions of parsed; see versionAEAD
	creds  map[string]*serverstore.Credential // unsealed credentials of parsed; see LookupCredential
}

// reset replaces the snapshot's document; the caller holds mu. The parsed
// state and the versions unsealed from it go with the old document.
func (sn *snapshot) reset(data []byte, rev Revision) {
	sn.data, sn.rev, sn.parsed, sn.aeads, sn.creds = data, rev, nil, nil, nil
}

// readScope is one request's view of the state's freshness (see
// serverstore.Ops.ReadOnce): the first read under it asks the Storage for
// the state's revision; later reads take the snapshot as this Store last
// read or wrote it. Another process's change is seen by the next scope.
type readScope struct {
	s       *Store
	checked atomic.Bool
}

type readScopeKey struct{}

// ReadOnce implements serverstore.Ops.
func (s serverOps) ReadOnce(ctx context.Context) context.Context { return s.readOnce(ctx) }

// readOnce returns ctx with a new read scope of s.
func (s *Store) readOnce(ctx context.Context) context.Context {
	return context.WithValue(ctx, readScopeKey{}, &readScope{s: s})
}

// unscoped returns ctx without its read scope: reads under it ask the
// Storage (a read under the write lock must see every earlier write).
func unscoped(ctx context.Context) context.Context {
	return context.WithValue(ctx, readScopeKey{}, (*readScope)(nil))
}

// revision is the one place the Store asks whether its state changed: the
// state document's revision now, or, under a read scope that already
// asked (and unless fresh), the snapshot's. Writes under the lock ask
// fresh, so a scope never makes one conflict.
func (s *Store) revision(ctx context.Context, fresh bool) (Revision, error) {
	sc, _ := ctx.Value(readScopeKey{}).(*readScope)
	if sc != nil && sc.s != s {
		sc = nil
	}
	if sc != nil && !fresh && sc.checked.Load() {
		s.snap.mu.Lock()
		rev := s.snap.rev
		s.snap.mu.Unlock()
		if rev != NoRevision {
			return rev, nil
		}
	}
	rev, err := s.st.Revision(ctx, StateDocument)
	if err != nil {
		return NoRevision, fmt.Errorf("keystore: read: %w", err)
	}
	if sc != nil {
		sc.checked.Store(true)
	}
	return rev, nil
}

// load returns a private, mutable copy of the store's state.
func (s *Store) load(ctx context.Context) (*storeFile, error) {
	f, _, err := s.loadRev(ctx, false)
	return f, err
}

// loadRev returns a private copy of the state and its revision; fresh
// asks the Storage even under a read scope.
func (s *Store) loadRev(ctx context.Context, fresh bool) (*storeFile, Revision, error) {
	data, rev, err := s.stateBytes(ctx, fresh)
	if err != nil {
		return nil, NoRevision, err
	}
	f, err := parseStoreFile(data)
	return f, rev, err
}

func (s *Store) stateBytes(ctx context.Context, fresh bool) ([]byte, Revision, error) {
	rev, err := s.revision(ctx, fresh)
	if err != nil {
		return nil, NoRevision, err
	}
	s.snap.mu.Lock()
	defer s.snap.mu.Unlock()
	if rev != NoRevision && rev == s.snap.rev {
		return s.snap.data, rev, nil
	}
	data, rev, err := s.st.Read(ctx, StateDocument)
	if errors.Is(err, ErrNoDocument) {
		return nil, NoRevision, fmt.Errorf("%w in %s", ErrNotInitialized, s.dir)
	}
	if err != nil {
		return nil, NoRevision, fmt.Errorf("keystore: read: %w", err)
	}
	s.snap.reset(data, rev)
	return data, rev, nil
}

// view returns the state for reading only: one parse per revision, shared
// by every caller, so the key server's per-request reads cost at most a
// revision check, not a JSON decode. Callers must not change it (load
// gives a private copy).
func (s *Store) view(ctx context.Context) (*storeFile, error) {
	f, _, err := s.viewRev(ctx)
	return f, err
}

// viewRev is view with the revision of the state returned.
func (s *Store) viewRev(ctx context.Context) (*storeFile, Revision, error) {
	data, rev, err := s.stateBytes(ctx, false)
	if err != nil {
		return nil, NoRevision, err
	}
	s.snap.mu.Lock()
	if f := s.snap.parsed; f != nil && rev != NoRevision && rev == s.snap.rev {
		s.snap.mu.Unlock()
		return f, rev, nil
	}
	s.snap.mu.Unlock()
	f, err := parseStoreFile(data)
	if err != nil {
		return nil, NoRevision, err
	}
	s.snap.mu.Lock()
	if rev != NoRevision && rev == s.snap.rev {
		s.snap.parsed = f
	}
	s.snap.mu.Unlock()
	return f, rev, nil
}

// stateRevision is the state's revision (see revision), NoRevision if it
// cannot be had.
func (s *Store) stateRevision(ctx context.Context, fresh bool) Revision {
	rev, err := s.revision(ctx, fresh)
	if err != nil {
		return NoRevision
	}
	return rev
}

func parseStoreFile(data []byte) (*storeFile, error) {
	var f storeFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptStore, metaFile, err)
	}
	if f.Format != storeFormat {
		return nil, fmt.Errorf("%w: format %d, this keystack reads %d", ErrCorruptStore, f.Format, storeFormat)
	}
	if !f.Insecure && ((f.KDF == nil) == (f.Seal == nil) || f.Verifier == nil) {
		return nil, fmt.Errorf("%w: sealed store without exactly one of KDF and seal, or without verifier", ErrCorruptStore)
	}
	if f.Insecure && (f.KDF != nil || f.Seal != nil) {
		return nil, fmt.Errorf("%w: insecure store with a KDF or seal", ErrCorruptStore)
	}
	if f.Seal != nil {
		if err := f.Seal.check(); err != nil {
			return nil, err
		}
	}
	if f.KDF != nil {
		if err := f.KDF.check(); err != nil {
			return nil, err
		}
	}
	if f.Keys == nil {
		f.Keys = map[string]*keyRecord{}
	}
	for name, k := range f.Keys {
		if err := k.check(name); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// writeState replaces the state with f if its revision is still prev.
func (s *Store) writeState(ctx context.Context, f *storeFile, prev Revision) (Revision, error) {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return NoRevision, fmt.Errorf("keystore: encode: %w", err)
	}
	data = append(data, '\n')
	rev, err := s.st.Write(ctx, StateDocument, data, prev)
	if errors.Is(err, ErrConflict) {
		return NoRevision, fmt.Errorf("keystore: write: %w", err)
	}
	if err != nil {
		return NoRevision, err
	}
	s.snap.mu.Lock()
	s.snap.reset(data, rev)
	s.snap.mu.Unlock()
	return rev, nil
}

// update runs fn on a fresh copy of the store's state under the write lock
// and writes the result back when fn succeeds.
func (s *Store) update(ctx context.Context, fn func(f *storeFile) error) error {
	unlock, err := s.st.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.modify(ctx, fn)
}

// modify is update for a caller holding the write lock.
func (s *Store) modify(ctx context.Context, fn func(f *storeFile) error) error {
	f, rev, err := s.loadRev(ctx, true)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		if errors.Is(err, errUnchanged) {
			return nil
		}
		return err
	}
	_, err = s.writeState(ctx, f, rev)
	return err
}

// errUnchanged, returned by an update function, skips the write.
var errUnchanged = errors.New("keystore: unchanged")

// unlockKEK returns the key-encryption key, deriving it from the passphrase
// (or unwrapping it with an auto-unseal's master key) on first need.
// Insecure stores return nil. The result is a copy the caller clears after
// use, so Close cannot pull it from under a running operation. When another
// process resealed the store since, it unlocks again if it may (see
// OpenOptions.RereadPassphrase), else fails with errResealed.
func (s *Store) unlockKEK(f *storeFile) ([]byte, error) {
	if f.Insecure {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kek != nil {
		if checkVerifier(s.kek, f.Verifier) == nil {
			return bytes.Clone(s.kek), nil
		}
		if f.Seal == nil {
			return s.reunlockPassphrase(f)
		}
	}
	kek, err := s.unlockFresh(f)
	if err != nil {
		return nil, err
	}
	clear(s.kek)
	s.kek = kek
	return bytes.Clone(kek), nil
}

// unlockFresh obtains the key-encryption key from the store's seal.
func (s *Store) unlockFresh(f *storeFile) ([]byte, error) {
	if f.Seal != nil {
		return s.autoUnlock(f)
	}
	if s.passphrase == nil {
		return nil, ErrLocked
	}
	return s.unlockWithTries(f)
}

// checkName accepts [A-Za-z0-9][A-Za-z0-9._-]{0,127}, which excludes path
// separators, "..", ":" (backend specs) and control characters. (As a
// regexp, the bounded repetition cost every command 0.4 ms to compile.)
func checkName(name string) error {
	ok := len(name) >= 1 && len(name) <= 128 && isAlnum(name[0])
	for i := 1; ok && i < len(name); i++ {
		c := name[i]
		ok = isAlnum(c) || c == '.' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w %q: want 1-128 of A-Z a-z 0-9 . _ - starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
