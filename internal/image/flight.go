package image

import (
	"context"
	"errors"
	"sync"
)

// errRetry tells a waiter that the call it waited for was cancelled by its
// own caller, not by the waiter, so the waiter should try again itself.
var errRetry = errors.New("retry")

// flights runs one call per key at a time and lets concurrent callers wait
// for its result, so two pulls needing one blob download it once. Unlike
// singleflight the work runs in the first caller's goroutine: when that
// caller returns, its cleanup (aborted ingests) has happened.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	val  any
	err  error
}

func (f *flights) do(ctx context.Context, key string, work func() (any, error)) (any, error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flight{}
	}
	if fl, ok := f.m[key]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
			if fl.err != nil && isContextErr(fl.err) && ctx.Err() == nil {
				return nil, errRetry
			}
			return fl.val, fl.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	fl := &flight{done: make(chan struct{})}
	f.m[key] = fl
	f.mu.Unlock()
	fl.val, fl.err = work()
	f.mu.Lock()
	delete(f.m, key)
	f.mu.Unlock()
	close(fl.done)
	return fl.val, fl.err
}
