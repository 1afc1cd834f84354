// Package backoff is the per-key exponential back-off the kubelet uses for
// image pulls (key pod UID + image) and for restarting crashed containers
// (key pod + container): the delay starts at Initial, doubles on every
// failure up to Max, and starts over when the key has been quiet for
// longer than ResetAfter (by default twice Max, kubelet's rule, which for
// crash loops is "10 minutes of running without trouble").
//
// Time comes from an injectable clock so tests can check the real values
// without waiting for them.
package backoff

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Kubelet's defaults. Image pulls: imageBackOffPeriod and MaxImageBackOff
// (pkg/kubelet/kubelet.go); container restarts: backOffPeriod and
// MaxContainerBackOff (pkg/kubelet/kubelet.go).
const (
	ImagePullInitial   = 10 * time.Second
	ImagePullMax       = 300 * time.Second
	CrashLoopInitial   = 10 * time.Second
	CrashLoopMax       = 300 * time.Second
	DefaultResetFactor = 2
)

// Backoff tracks one delay per key. It is safe for concurrent use.
type Backoff struct {
	Initial, Max time.Duration
	// ResetAfter: a failure that comes more than this after the previous
	// one starts the sequence over. Zero means 2*Max.
	ResetAfter time.Duration
	Clock      clock.PassiveClock

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	delay      time.Duration
	lastUpdate time.Time
}

// New returns a Backoff on clk (the real clock when nil).
func New(initial, max time.Duration, clk clock.PassiveClock) *Backoff {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Backoff{Initial: initial, Max: max, Clock: clk, entries: map[string]*entry{}}
}

func (b *Backoff) resetAfter() time.Duration {
	if b.ResetAfter > 0 {
		return b.ResetAfter
	}
	return DefaultResetFactor * b.Max
}

func (b *Backoff) expired(e *entry, at time.Time) bool {
	return at.Sub(e.lastUpdate) > b.resetAfter()
}

// Next records a failure of key at time at and returns the delay before the
// next attempt: Initial for a new (or reset) key, then doubled up to Max.
func (b *Backoff) Next(key string, at time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.entries == nil {
		b.entries = map[string]*entry{}
	}
	e, ok := b.entries[key]
	if !ok || b.expired(e, at) {
		e = &entry{delay: b.Initial}
		b.entries[key] = e
	} else {
		e.delay = min(e.delay*2, b.Max)
	}
	e.lastUpdate = at
	return e.delay
}

// Get returns key's current delay, 0 when it has none.
func (b *Backoff) Get(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.entries[key]; ok {
		return e.delay
	}
	return 0
}

// InBackOffSinceUpdate reports whether the delay that followed key's last
// failure has not yet passed at time now (image pulls: retry only after
// it).
func (b *Backoff) InBackOffSinceUpdate(key string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, now) {
		return false
	}
	return now.Sub(e.lastUpdate) < e.delay
}

// InBackOffSince reports whether less than key's delay has passed since
// eventTime (crash loops: eventTime is when the container finished), as
// long as key has not been quiet long enough to reset.
func (b *Backoff) InBackOffSince(key string, eventTime time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		return false
	}
	return b.Clock.Since(eventTime) < e.delay
}

// Remaining is how long until key's back-off since eventTime is over (0
// when it is not backing off), so a caller can wake up then.
func (b *Backoff) Remaining(key string, eventTime time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok || b.expired(e, eventTime) {
		return 0
	}
	return max(0, e.delay-b.Clock.Since(eventTime))
}

// Reset forgets key (after a successful pull).
func (b *Backoff) Reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.entries, key)
}

// GC forgets every key that has been quiet long enough to reset anyway.
func (b *Backoff) GC() {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.Clock.Now()
	for k, e := range b.entries {
		if b.expired(e, now) {
			delete(b.entries, k)
		}
	}
}

// DeletePrefix forgets every key starting with prefix (a pod that went).
func (b *Backoff) DeletePrefix(prefix string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.entries {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(b.entries, k)
		}
	}
}
