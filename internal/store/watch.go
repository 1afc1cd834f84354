package store

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/peapod/peapod/internal/objects"
)

// maxPending is how many events a watcher may fall behind before it is
// ended with an Expired error (the consumer lists and watches again).
const maxPending = 10000

// Watch streams the changes of a resource in namespace ns ("" for all)
// that match opts: ADDED, MODIFIED and DELETED events in commit order, each
// carrying the object with its new resourceVersion (its last state for
// DELETED). An object that starts or stops matching the selectors arrives
// as ADDED or DELETED, as from the Kubernetes API.
//
// With opts.ResourceVersion "" or "0" the stream starts with an ADDED
// event per current object; with a version from List or from an object it
// resumes right after it, or fails with 410 Expired if that version is
// older than the store remembers. The watch ends, and its channel closes,
// when ctx ends, Stop is called, the store closes, or the consumer falls
// more than 10000 events behind (then an ERROR event with an Expired
// status comes last).
func (s *Store) Watch(ctx context.Context, resource, ns string, opts ListOptions) (watch.Interface, error) {
	k, err := kindOf(resource)
	if err != nil {
		return nil, err
	}
	w := &watcher{
		s: s, resource: k.Resource, ns: ns, opts: opts,
		notify: make(chan struct{}, 1),
		result: make(chan watch.Event),
		done:   make(chan struct{}),
	}
	s.mu.Lock()
	switch opts.ResourceVersion {
	case "", "0":
		err = s.db.View(func(tx *bolt.Tx) error {
			if !k.Namespaced {
				ns = ""
			}
			items, err := list(tx, k, ns, opts)
			for _, o := range items {
				w.queue = append(w.queue, watch.Event{Type: watch.Added, Object: o})
			}
			return err
		})
	default:
		var from uint64
		from, err = strconv.ParseUint(opts.ResourceVersion, 10, 64)
		if err != nil {
			err = apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", opts.ResourceVersion))
			break
		}
		var current uint64
		_ = s.db.View(func(tx *bolt.Tx) error { current = tx.Bucket(bucketMeta).Sequence(); return nil })
		oldest := current + 1
		if len(s.backlog) > 0 {
			oldest = s.backlog[0].rv
		}
		if from+1 < oldest && from < current {
			err = apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", from, oldest-1))
			break
		}
		for _, c := range s.backlog {
			if c.rv > from {
				w.enqueueLocked(c)
			}
		}
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	s.watchers[w] = struct{}{}
	s.mu.Unlock()

	go w.run()
	stop := context.AfterFunc(ctx, w.Stop)
	go func() {
		<-w.done
		stop()
	}()
	return w, nil
}

// broadcastLocked records a committed change and hands it to every
// watcher. s.mu is held.
func (s *Store) broadcastLocked(c change) {
	s.backlog = append(s.backlog, c)
	if n := len(s.backlog) - s.opts.WatchBacklog; n > 0 {
		s.backlog = append(s.backlog[:0:0], s.backlog[n:]...)
	}
	for w := range s.watchers {
		w.enqueueLocked(c)
	}
}

type watcher struct {
	s        *Store
	resource string
	ns       string
	opts     ListOptions

	mu       sync.Mutex
	queue    []watch.Event
	overflow bool
	notify   chan struct{}

	result   chan watch.Event
	done     chan struct{}
	stopOnce sync.Once
}

// enqueueLocked adds the event c means for this watcher, if any.
func (w *watcher) enqueueLocked(c change) {
	if c.resource != w.resource || (w.ns != "" && c.obj.GetNamespace() != w.ns) {
		return
	}
	typ := c.typ
	now := w.opts.matches(c.obj)
	switch c.typ {
	case watch.Modified:
		was := w.opts.matches(c.old)
		switch {
		case was && !now:
			typ = watch.Deleted
		case !was && now:
			typ = watch.Added
		case !was && !now:
			return
		}
	default:
		if !now {
			return
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.overflow {
		return
	}
	if len(w.queue) >= maxPending {
		w.overflow = true
		st := apierrors.NewResourceExpired("the watch fell too far behind; list and watch again").ErrStatus
		w.queue = append(w.queue, watch.Event{Type: watch.Error, Object: &st})
	} else {
		w.queue = append(w.queue, watch.Event{Type: typ, Object: c.obj.DeepCopyObject().(objects.Object)})
	}
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// run delivers queued events until the watch stops.
func (w *watcher) run() {
	defer close(w.result)
	for {
		w.mu.Lock()
		var (
			ev  watch.Event
			has = len(w.queue) > 0
			end = w.overflow && len(w.queue) == 0
		)
		if has {
			ev = w.queue[0]
			w.queue[0] = watch.Event{}
			w.queue = w.queue[1:]
		}
		w.mu.Unlock()
		if end {
			w.Stop()
			return
		}
		if !has {
			select {
			case <-w.notify:
				continue
			case <-w.done:
				return
			}
		}
		select {
		case w.result <- ev:
		case <-w.done:
			return
		}
	}
}

// ResultChan is the stream of events; it is closed when the watch ends.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

// Stop ends the watch. It is safe to call more than once.
func (w *watcher) Stop() {
	w.s.mu.Lock()
	w.stopLocked()
	w.s.mu.Unlock()
}

func (w *watcher) stopLocked() {
	w.stopOnce.Do(func() {
		delete(w.s.watchers, w)
		close(w.done)
	})
}

// StopWatches ends every open watch (their channels close) while the store
// stays usable; the daemon calls it when it shuts down so that streaming
// API requests finish.
func (s *Store) StopWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		w.stopLocked()
	}
}
