package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/peapod/peapod/internal/objects"
)

// Component is the events' source.component, as kubelet's.
const Component = "kubelet"

// recorder writes Events about pods into the store. Like client-go's event
// correlator it folds a repeat of the same event (same object, field path,
// type, reason and message) into the first one, raising its count and
// lastTimestamp, so a crash loop is one event with a count, not thousands.
type recorder struct {
	store Store
	clock clock.PassiveClock
	node  string
	log   *slog.Logger

	mu   sync.Mutex
	seen map[eventKey]string // -> the Event's name
	seq  int64               // keeps names unique within one clock tick
}

type eventKey struct {
	uid                         types.UID
	fieldPath, typ, reason, msg string
}

func newRecorder(s Store, clk clock.PassiveClock, node string, log *slog.Logger) *recorder {
	return &recorder{store: s, clock: clk, node: node, log: log, seen: map[eventKey]string{}}
}

// Event records an event about pod; fieldPath names a container
// ("spec.containers{app}") or is empty for the pod itself.
func (r *recorder) Event(pod *corev1.Pod, fieldPath, typ, reason, msg string) {
	ctx := context.Background()
	now := metav1.NewTime(r.clock.Now())
	key := eventKey{pod.UID, fieldPath, typ, reason, msg}
	r.mu.Lock()
	defer r.mu.Unlock()
	if name, ok := r.seen[key]; ok {
		_, err := r.store.GuaranteedUpdate(ctx, "events", pod.Namespace, name, func(cur objects.Object) (objects.Object, error) {
			e := cur.(*corev1.Event)
			e.Count++
			e.LastTimestamp = now
			return e, nil
		})
		if err == nil {
			return
		}
		delete(r.seen, key) // removed meanwhile (namespace deleted?): make a new one
	}
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()+r.seq),
			Namespace: pod.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, FieldPath: fieldPath,
		},
		Reason:              reason,
		Message:             msg,
		Source:              corev1.EventSource{Component: Component, Host: r.node},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Type:                typ,
		ReportingController: Component,
		ReportingInstance:   r.node,
	}
	r.seq++
	if _, err := r.store.Create(ctx, e); err != nil {
		r.log.Debug("event not recorded", "pod", pod.Namespace+"/"+pod.Name, "reason", reason, "err", err)
		return
	}
	r.seen[key] = e.Name
}

// forget drops the folding state of a pod that is gone.
func (r *recorder) forget(uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.seen {
		if k.uid == uid {
			delete(r.seen, k)
		}
	}
}
