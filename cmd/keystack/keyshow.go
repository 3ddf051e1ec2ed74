package main

// key show's rotation schedule and lifecycle history.

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/keystack/keystack/internal/schedule"
	"github.com/keystack/keystack/keystore"
)

// rotationView is a key's rotation schedule as key show prints it.
type rotationView struct {
	Every        string    `json:"every,omitempty"`
	Jitter       string    `json:"jitter,omitempty"`
	RetireAfter  string    `json:"retire_after,omitempty"`
	KMSAutomatic bool      `json:"kms_automatic,omitempty"`
	LastRotated  time.Time `json:"last_rotated,omitzero"`
	NextDue      time.Time `json:"next_due,omitzero"`
}

// historyEvent is one lifecycle event of a version.
type historyEvent struct {
	Version int       `json:"version"`
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	Reason  string    `json:"reason,omitempty"`
}

// viewRotation is k's schedule, nil when it has none. The next rotation
// is due as the rotation daemon computes it (schedule.Due, which
// rotation.Runner applies, from the last rotation or else the creation).
func viewRotation(k *keystore.KeyInfo) *rotationView {
	rs := k.Rotation
	if rs == nil {
		return nil
	}
	v := &rotationView{KMSAutomatic: rs.KMSAutomatic, LastRotated: k.LastRotated}
	v.Every, v.Jitter, v.RetireAfter = durationText(rs.Every), durationText(rs.Jitter), durationText(rs.RetireAfter)
	if rs.Every > 0 && !rs.KMSAutomatic {
		last := k.LastRotated
		if last.IsZero() {
			last = k.Created
		}
		_, v.NextDue = schedule.Due(schedule.Policy{Every: rs.Every, Jitter: rs.Jitter}, last, time.Now(), k.Name)
	}
	return v
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// viewHistory merges the versions' events, oldest first.
func viewHistory(k *keystore.KeyInfo) []historyEvent {
	out := []historyEvent{}
	for _, v := range k.Versions {
		for _, e := range v.History {
			out = append(out, historyEvent{Version: v.Version, Time: e.Time, Action: e.Action, Reason: e.Reason})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// printRotation writes the schedule lines of key show.
func printRotation(w io.Writer, r *rotationView, minDecrypt int) {
	if minDecrypt > 0 {
		fmt.Fprintf(w, "min decrypt: v%d\n", minDecrypt)
	}
	if r == nil || (r.Every == "" && r.RetireAfter == "") {
		fmt.Fprintln(w, "rotation:    none scheduled")
		return
	}
	fmt.Fprintf(w, "rotation:    every %s", cmpText(r.Every, "(no period)"))
	if r.Jitter != "" {
		fmt.Fprintf(w, ", jitter %s", r.Jitter)
	}
	if r.KMSAutomatic {
		fmt.Fprint(w, ", by AWS KMS automatic rotation")
	}
	fmt.Fprintln(w)
	if r.RetireAfter != "" {
		fmt.Fprintf(w, "retire:      superseded versions after %s\n", r.RetireAfter)
	}
	if !r.LastRotated.IsZero() {
		fmt.Fprintf(w, "last rotated: %s\n", r.LastRotated.UTC().Format(time.RFC3339))
	}
	if !r.NextDue.IsZero() {
		fmt.Fprintf(w, "next due:    %s\n", r.NextDue.UTC().Format(time.RFC3339))
	}
}

func cmpText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// printHistory writes the lifecycle events of key show.
func printHistory(w io.Writer, events []historyEvent) {
	fmt.Fprintln(w, "history:")
	for _, e := range events {
		fmt.Fprintf(w, "  %s  v%d  %s", e.Time.UTC().Format(time.RFC3339), e.Version, e.Action)
		if e.Reason != "" {
			fmt.Fprintf(w, "  (%s)", e.Reason)
		}
		fmt.Fprintln(w)
	}
}
