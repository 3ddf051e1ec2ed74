package keystore

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/keystack/keystack/policy"
)

// KMS automatic rotation accepts periods of 90 to 2560 days
// (EnableKeyRotation, RotationPeriodInDays).
const (
	kmsMinRotationDays = 90
	kmsMaxRotationDays = 2560
	day                = 24 * time.Hour
)

// RotationSettings is a key's rotation schedule, kept in keystore.json and
// read by the rotation engine (package rotation) to build its Policy.
type RotationSettings struct {
	// Every is the rotation period; 0 disables scheduled rotation.
	Every time.Duration `json:"every,omitempty"`
	// Jitter spreads rotations over [Every, Every+Jitter); it must be
	// smaller than Every.
	Jitter time.Duration `json:"jitter,omitempty"`
	// RetireAfter is how long a superseded version stays usable before it
	// is due for retirement; 0 keeps it. The rotation engine (package
	// rotation) retires a decrypt-only version that stopped being primary
	// longer ago by disabling it (Locked.DisableVersion), whatever Every is.
	RetireAfter time.Duration `json:"retire_after,omitempty"`
	// OnSuccessCommand and OnFailureCommand are programs (path, then
	// arguments; no shell) told about each scheduled rotation.
	OnSuccessCommand []string `json:"on_success_command,omitempty"`
	OnFailureCommand []string `json:"on_failure_command,omitempty"`
	// WebhookURL receives a JSON POST after each scheduled rotation.
	WebhookURL string `json:"webhook_url,omitempty"`
	// KMSAutomatic hands rotation of an aws-kms key to KMS automatic
	// rotation with period Every (90 to 2560 whole days); the rotation
	// engine then leaves the key alone.
	KMSAutomatic bool `json:"kms_automatic,omitempty"`
}

func (r *RotationSettings) clone() *RotationSettings {
	if r == nil {
		return nil
	}
	c := *r
	c.OnSuccessCommand = slices.Clone(r.OnSuccessCommand)
	c.OnFailureCommand = slices.Clone(r.OnFailureCommand)
	return &c
}

// check validates settings, nil included. Errors never echo the webhook
// URL, which often embeds a secret.
func (r *RotationSettings) check() error {
	if r == nil {
		return nil
	}
	bad := func(why string) error { return fmt.Errorf("%w: rotation settings: %s", ErrInvalidOptions, why) }
	switch {
	case r.Every < 0 || r.Jitter < 0 || r.RetireAfter < 0:
		return bad("negative duration")
	case r.Jitter > 0 && r.Jitter >= r.Every:
		return bad("jitter must be smaller than the period")
	case r.KMSAutomatic && (r.Every%day != 0 || r.Every < kmsMinRotationDays*day || r.Every > kmsMaxRotationDays*day):
		return bad("KMS automatic rotation needs a period of 90 to 2560 whole days")
	}
	for _, cmd := range [][]string{r.OnSuccessCommand, r.OnFailureCommand} {
		if len(cmd) > 0 && cmd[0] == "" {
			return bad("empty hook command path")
		}
	}
	if r.WebhookURL != "" {
		u, err := url.Parse(r.WebhookURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("webhook URL must be an absolute http(s) URL")
		}
	}
	return nil
}

// AutoRotator is implemented by backends whose keys can rotate themselves
// on a schedule (awskms.Backend: EnableKeyRotation).
type AutoRotator interface {
	EnableRotation(ctx context.Context, ref string, periodDays int) error
}

// SetRotationSettings replaces key name's rotation settings; nil removes
// them. With KMSAutomatic set, the key must be an aws-kms key whose
// registered backend is (or wraps) an AutoRotator: automatic rotation is enabled on
// the primary's KMS key before the settings are stored, so a KMS failure
// leaves them unchanged. Turning KMSAutomatic off does not disable KMS
// rotation. RetireAfter is refused (ErrNotSupported) for aws-kms keys,
// whose versions share one KMS key. The change is recorded in the primary version's history.
func (s *Store) SetRotationSettings(ctx context.Context, name string, rs *RotationSettings) (*KeyInfo, error) {
	if err := s.authorize(ctx, policy.ActionRotateKey, name, 0, nil); err != nil {
		return nil, err
	}
	rs = rs.clone()
	if err := rs.check(); err != nil {
		return nil, err
	}
	return s.updateKey(ctx, name, func(k *keyRecord) error {
		if rs != nil && rs.RetireAfter > 0 && k.Backend == BackendAWSKMS {
			// Every version of a KMS key rotated in KMS shares one ARN, which
			// decrypts them all: disabling one alone cannot be enforced, so
			// each pass would fail to retire it.
			return fmt.Errorf("%w: retirement (retire after) cannot be enforced for aws-kms key %q: its versions share one KMS key; "+
				"retire a KMS key's versions together with a minimum decryption version after moving it to a new KMS key",
				ErrNotSupported, name)
		}
		if rs != nil && rs.KMSAutomatic {
			if err := s.enableKMSRotation(ctx, name, k, rs.Every); err != nil {
				return err
			}
		}
		k.Rotation = rs
		p := k.version(k.Primary)
		p.History = append(p.History, Event{Time: s.now().UTC(), Action: "rotation-settings", Reason: settingsSummary(rs)})
		return nil
	})
}

func (s *Store) enableKMSRotation(ctx context.Context, name string, k *keyRecord, every time.Duration) error {
	if k.Backend != BackendAWSKMS {
		return fmt.Errorf("%w: KMS automatic rotation needs an aws-kms key, %q is %s", ErrNotSupported, name, k.Backend)
	}
	ar, err := capability[AutoRotator](s, BackendAWSKMS, "enable automatic rotation")
	if err != nil {
		return err
	}
	if err := ar.EnableRotation(ctx, k.version(k.Primary).Ref, int(every/day)); err != nil {
		return fmt.Errorf("keystore: %s backend: %w", BackendAWSKMS, err)
	}
	return nil
}

// settingsSummary describes settings for the history without hook
// commands or the webhook URL, which may carry secrets.
func settingsSummary(rs *RotationSettings) string {
	if rs == nil {
		return "removed"
	}
	s := fmt.Sprintf("every %v, jitter %v, retire after %v", rs.Every, rs.Jitter, rs.RetireAfter)
	if rs.KMSAutomatic {
		s += ", KMS automatic"
	}
	return s
}
