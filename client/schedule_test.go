package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keystack/keystack/client"
	"github.com/keystack/keystack/internal/clientenv"
)

// TestDefaultSchedule: the numbers README's "Failover" states are the
// defaults, and a default client makes two passes over its endpoints with
// at least the 100 ms pause between them.
func TestDefaultSchedule(t *testing.T) {
	if client.DefaultRounds != 2 || client.DefaultBackoff != 100*time.Millisecond ||
		clientenv.DefaultTimeout != 10*time.Second || client.DefaultAttemptTimeout != 5*time.Second {
		t.Fatalf("defaults changed: rounds %d, backoff %v, timeout %v, attempt %v; update README's Failover paragraph and Config's doc",
			client.DefaultRounds, client.DefaultBackoff, clientenv.DefaultTimeout, client.DefaultAttemptTimeout)
	}
	f := newFixture(t)
	f.a.fail["ListKeys"], f.b.fail["ListKeys"] = "500", "500"
	c := defaultClient(t, f)
	start := time.Now()
	_, err := c.ListKeys(context.Background())
	d := time.Since(start)
	if !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("ListKeys with both endpoints failing: %v, want ErrUnavailable", err)
	}
	if f.a.count("ListKeys") != 2 || f.b.count("ListKeys") != 2 || d < client.DefaultBackoff {
		t.Errorf("a saw %d, b saw %d ListKeys in %v; want 2 passes with a %v pause", f.a.count("ListKeys"), f.b.count("ListKeys"), d, client.DefaultBackoff)
	}
}

// TestThrottleRetries: a ThrottlingException (sent before the server
// acts) is retried on the same endpoint 4 times, even for CreateKey,
// with jittered pauses of at least 100+200+400+800 ms; then the call
// fails as unavailable (exit 6 in the CLI) and no other endpoint is tried.
// The lower bound is the guarantee; no upper bound is asserted under load.
func TestThrottleRetries(t *testing.T) {
	t.Parallel() // waits out retry pauses; overlaps the other waits
	f := newFixture(t)
	f.a.fail["CreateKey"] = "throttle"
	c := defaultClient(t, f)
	start := time.Now()
	_, err := c.CreateKey(context.Background(), "", "")
	d := time.Since(start)
	if !errors.Is(err, client.ErrUnavailable) || !errors.As(err, new(*client.APIError)) {
		t.Fatalf("CreateKey throttled throughout: %v, want the server's ThrottlingException (ErrUnavailable)", err)
	}
	if f.a.count("CreateKey") != 5 || f.b.count("CreateKey") != 0 || d < 1500*time.Millisecond {
		t.Errorf("a saw %d, b saw %d CreateKey in %v; want 5 on a, none on b, over at least 1.5 s", f.a.count("CreateKey"), f.b.count("CreateKey"), d)
	}
	// Once the throttling stops, a retry goes through, applied once.
	f.a.mu.Lock()
	f.a.fail["CreateKey"] = ""
	f.a.mu.Unlock()
	if _, err := c.CreateKey(context.Background(), "", ""); err != nil {
		t.Fatal(err)
	}
}

// TestThrottleRetryBudget: the calls of one Client share a budget of
// throttle retries (500, 5 each, as the AWS SDKs' retry quota): 150 calls
// (CreateKey: one request each)
// throttled at once make 150 first attempts and 100 retries in all, not
// 600, and each fails as unavailable; once answers come, the budget
// refills one per answer.
func TestThrottleRetryBudget(t *testing.T) {
	t.Parallel() // waits out retry pauses
	f := newFixture(t)
	f.a.fail["CreateKey"] = "throttle"
	c := defaultClient(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, 150)
	for range 150 {
		wg.Go(func() {
			_, err := c.CreateKey(context.Background(), "", "")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("throttled CreateKey: %v, want ErrUnavailable", err)
		}
	}
	if got := f.a.count("CreateKey"); got != 250 {
		t.Fatalf("a saw %d CreateKey; want 150 calls + 100 retries (the budget)", got)
	}
	// Spent: a throttled call is not retried.
	if _, err := c.CreateKey(context.Background(), "", ""); !errors.Is(err, client.ErrUnavailable) || f.a.count("CreateKey") != 251 {
		t.Fatalf("with the budget spent: %v after %d attempts; want one attempt", err, f.a.count("CreateKey"))
	}
	// Five answers give back one retry's cost.
	f.a.mu.Lock()
	f.a.fail["CreateKey"] = ""
	f.a.mu.Unlock()
	for range throttleRefill {
		if _, err := c.CreateKey(context.Background(), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	f.a.mu.Lock()
	f.a.fail["CreateKey"] = "throttle"
	f.a.mu.Unlock()
	before := f.a.count("CreateKey")
	if _, err := c.CreateKey(context.Background(), "", ""); !errors.Is(err, client.ErrUnavailable) || f.a.count("CreateKey")-before != 2 {
		t.Fatalf("after %d answers: %v in %d attempts; want one retry", throttleRefill, err, f.a.count("CreateKey")-before)
	}
}

// throttleRefill is how many answers refill one retry (its cost).
const throttleRefill = 5

func defaultClient(t *testing.T, f *fixture) *client.Client {
	c, err := client.New(client.Config{Endpoints: []string{f.urlA, f.urlB}, AccessKeyID: f.cred.AccessKeyID, SecretAccessKey: f.cred.Secret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
