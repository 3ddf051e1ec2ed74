package xks

import (
	"context"
	"sync"
	"time"
)

const (
	// defaultBackendTimeout bounds a request's backend work when the
	// configuration gives no backendTimeoutMs: AWS KMS gives up after
	// 250 ms, including the network and TLS; this leaves it 150 ms.
	defaultBackendTimeout = 100 * time.Millisecond
	// maxBackendTimeout is the largest backendTimeoutMs: past 250 ms
	// AWS KMS no longer waits for the answer.
	maxBackendTimeout = 250 * time.Millisecond
	// defaultBackendCalls bounds the backend calls in progress when the
	// configuration gives no maxBackendCalls.
	defaultBackendCalls = 64
	maxBackendCalls     = 4096
)

var errDependencyTimeout = errorf("DependencyTimeoutException", "the key backend did not answer within the proxy's deadline")

// backendSlots bounds the backend calls in progress, over all prefixes:
// a call that cannot get a slot before its request's deadline times
// out, and a call past its deadline keeps its slot until the backend
// returns, so a stuck backend holds at most the configured number of
// goroutines.
type backendSlots struct {
	mu sync.Mutex
	ch chan struct{}
}

// get returns the semaphore of n slots. A reload that changes n starts a
// new one; calls still holding slots of the old one release them there.
func (s *backendSlots) get(n int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil || cap(s.ch) != n {
		s.ch = make(chan struct{}, n)
	}
	return s.ch
}

// withDeadline returns ctx bounded by the configuration's backend
// timeout: the budget of all backend calls of one request.
func withDeadline(ctx context.Context, cfg *Config) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, cfg.backendTimeout())
}

// backendCall runs fn, one call into the key backend, in a slot of h's
// bound and answers by ctx's deadline: when no slot frees in time or fn
// has not returned by then, it returns DependencyTimeoutException and fn
// finishes on its own goroutine (its context canceled), still holding
// its slot.
func backendCall[T any](ctx context.Context, h *Handler, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	sem := h.slots.get(h.cfg.Load().maxCalls())
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return zero, errDependencyTimeout
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-sem }()
		v, err := fn(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		return zero, errDependencyTimeout
	}
}
