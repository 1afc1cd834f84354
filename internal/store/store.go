// Package store keeps Kubernetes objects (Namespace, Pod, Secret, ConfigMap,
// Event) in a bbolt database and sets their metadata the way the Kubernetes
// API server does: a random uid, one resourceVersion counter for the whole
// database, generation for kinds with a spec, creationTimestamp; optimistic
// concurrency on updates; errors that are Kubernetes StatusErrors with
// Kubernetes' messages (`pods "foo" not found`).
//
// Watchers get every change in commit order from an in-process fan-out, so
// the pod worker can react to pods as a kubelet reacts to its watch.
//
// Validation and defaulting are not done here (see package objects): the
// store trusts its callers, the API server and the pod worker.
package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/peapod/peapod/internal/objects"
)

// Namespaces that exist from the first open and cannot be deleted.
var (
	InitialNamespaces  = []string{metav1.NamespaceDefault, metav1.NamespaceSystem}
	ImmortalNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic}
)

var (
	bucketObjects = []byte("objects") // sub-bucket per resource, key "ns/name" or "name"
	bucketMeta    = []byte("meta")    // its sequence is the resourceVersion counter
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// GracefulPodDeletion makes a pod deletion with a grace period only
	// mark the pod (deletionTimestamp, deletionGracePeriodSeconds) and
	// leave it to the pod worker, which stops the containers and then
	// removes the pod with a Delete whose grace period is 0. Without it
	// (no pod worker yet) a pod is removed at once.
	GracefulPodDeletion bool
	// Now is the clock for timestamps; time.Now when nil.
	Now func() time.Time
	// WatchBacklog is how many past changes a watch can resume from
	// (default 1024). Older resource versions get 410 Expired.
	WatchBacklog int
	// Logger, slog.Default when nil.
	Logger *slog.Logger
}

// Store is the object database. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	// mu orders commits and their delivery to watchers: an event is
	// broadcast before the next write commits.
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	backlog  []change // the last WatchBacklog changes, oldest first
}

// change is one committed change, kept for watchers.
type change struct {
	rv       uint64
	resource string
	typ      watch.EventType
	obj      objects.Object // the new state (the last state for DELETED)
	old      objects.Object // the previous state for MODIFIED
}

// Open opens (creating if needed) the database at path and makes sure the
// initial namespaces exist.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WatchBacklog <= 0 {
		opts.WatchBacklog = 1024
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open object store %s: %w", path, err)
	}
	s := &Store{db: db, opts: opts, log: opts.Logger, watchers: map[*watcher]struct{}{}}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return err
		}
		ob, err := tx.CreateBucketIfNotExists(bucketObjects)
		if err != nil {
			return err
		}
		for _, k := range objects.Kinds() {
			if _, err := ob.CreateBucketIfNotExists([]byte(k.Resource)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open object store %s: %w", path, err)
	}
	for _, ns := range InitialNamespaces {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		objects.SetDefaults(n)
		if _, err := s.Create(context.Background(), n); err != nil && !apierrors.IsAlreadyExists(err) {
			db.Close()
			return nil, fmt.Errorf("open object store %s: namespace %s: %w", path, ns, err)
		}
	}
	return s, nil
}

// Close stops every watch and closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	for w := range s.watchers {
		w.stopLocked()
	}
	s.mu.Unlock()
	return s.db.Close()
}

// Option changes one write.
type Option func(*writeOptions)

type writeOptions struct{ dryRun bool }

// DryRun makes a write do every check and return what it would store,
// without storing it (Kubernetes' dryRun=All).
func DryRun() Option { return func(o *writeOptions) { o.dryRun = true } }

var errDryRun = errors.New("dry run")

func kindOf(resource string) (objects.Kind, error) {
	k, err := objects.ForResource(resource)
	if err != nil || k.Resource != resource {
		return objects.Kind{}, apierrors.NewNotFound(k.GroupResource(), "")
	}
	return k, nil
}

func key(k objects.Kind, ns, name string) []byte {
	if k.Namespaced {
		return []byte(ns + "/" + name)
	}
	return []byte(name)
}

func decode(k objects.Kind, data []byte) (objects.Object, error) {
	o := k.NewObject()
	if err := json.Unmarshal(data, o); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", k.Resource, err)
	}
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	return o, nil
}

func get(tx *bolt.Tx, k objects.Kind, ns, name string) (objects.Object, error) {
	data := tx.Bucket(bucketObjects).Bucket([]byte(k.Resource)).Get(key(k, ns, name))
	if data == nil {
		return nil, apierrors.NewNotFound(k.GroupResource(), name)
	}
	return decode(k, data)
}

func put(tx *bolt.Tx, k objects.Kind, o objects.Object) error {
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", k.Resource, o.GetName(), err)
	}
	return tx.Bucket(bucketObjects).Bucket([]byte(k.Resource)).Put(key(k, o.GetNamespace(), o.GetName()), data)
}

func nextRV(tx *bolt.Tx) (uint64, error) { return tx.Bucket(bucketMeta).NextSequence() }

func formatRV(rv uint64) string { return strconv.FormatUint(rv, 10) }

func newUID() types.UID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

// write runs fn in a write transaction and hands the changes it records to
// the watchers after the commit.
func (s *Store) write(ctx context.Context, opts []Option, fn func(tx *bolt.Tx, record func(change)) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var wo writeOptions
	for _, o := range opts {
		o(&wo)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var changes []change
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := fn(tx, func(c change) { changes = append(changes, c) }); err != nil {
			return err
		}
		if wo.dryRun {
			return errDryRun
		}
		return nil
	})
	if wo.dryRun && errors.Is(err, errDryRun) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, c := range changes {
		s.broadcastLocked(c)
	}
	return nil
}

// Create stores a new object: its uid, resourceVersion, generation and
// creationTimestamp are set here, whatever the caller put there. A
// namespaced object needs its namespace to exist and not be terminating.
func (s *Store) Create(ctx context.Context, obj objects.Object, opts ...Option) (objects.Object, error) {
	k, err := objects.ForObject(obj)
	if err != nil {
		return nil, err
	}
	o := obj.DeepCopyObject().(objects.Object)
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	if !k.Namespaced {
		o.SetNamespace("")
	}
	err = s.write(ctx, opts, func(tx *bolt.Tx, record func(change)) error {
		if k.Namespaced {
			if err := namespaceOpen(tx, o.GetNamespace(), k, o.GetName()); err != nil {
				return err
			}
		}
		if _, err := get(tx, k, o.GetNamespace(), o.GetName()); err == nil {
			return apierrors.NewAlreadyExists(k.GroupResource(), o.GetName())
		}
		rv, err := nextRV(tx)
		if err != nil {
			return err
		}
		o.SetUID(newUID())
		o.SetResourceVersion(formatRV(rv))
		o.SetCreationTimestamp(metav1.NewTime(s.opts.Now().Truncate(time.Second)))
		o.SetDeletionTimestamp(nil)
		o.SetDeletionGracePeriodSeconds(nil)
		o.SetGeneration(0)
		if k.HasGeneration {
			o.SetGeneration(1)
		}
		if err := put(tx, k, o); err != nil {
			return err
		}
		record(change{rv: rv, resource: k.Resource, typ: watch.Added, obj: o})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return o.DeepCopyObject().(objects.Object), nil
}

// namespaceOpen checks that objects can be created in namespace ns.
func namespaceOpen(tx *bolt.Tx, ns string, k objects.Kind, name string) error {
	nk, _ := objects.ForResource("namespaces")
	if ns == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s %q: the namespace is empty", k.Resource, name))
	}
	n, err := get(tx, nk, "", ns)
	if err != nil {
		return err
	}
	if n.GetDeletionTimestamp() != nil {
		return apierrors.NewForbidden(k.GroupResource(), name,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// Get returns one object.
func (s *Store) Get(ctx context.Context, resource, ns, name string) (objects.Object, error) {
	k, err := kindOf(resource)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o objects.Object
	err = s.db.View(func(tx *bolt.Tx) error {
		o, err = get(tx, k, ns, name)
		return err
	})
	return o, err
}

// ListOptions select objects. Nil selectors select everything.
type ListOptions struct {
	Labels labels.Selector
	Fields fields.Selector
	// ResourceVersion, for Watch only: "" or "0" starts with the current
	// objects as ADDED events; a version from a List or an object resumes
	// after it.
	ResourceVersion string
}

func (lo ListOptions) matches(o objects.Object) bool {
	if lo.Labels != nil && !lo.Labels.Matches(labels.Set(o.GetLabels())) {
		return false
	}
	if lo.Fields != nil && !lo.Fields.Matches(FieldSet(o)) {
		return false
	}
	return true
}

// List returns the objects of a resource in namespace ns ("" for all
// namespaces) that match opts, sorted by namespace and name, and the
// resourceVersion of the database at that moment (to Watch from).
func (s *Store) List(ctx context.Context, resource, ns string, opts ListOptions) ([]objects.Object, string, error) {
	k, err := kindOf(resource)
	if err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	var (
		out []objects.Object
		rv  uint64
	)
	err = s.db.View(func(tx *bolt.Tx) error {
		rv = tx.Bucket(bucketMeta).Sequence()
		out, err = list(tx, k, ns, opts)
		return err
	})
	return out, formatRV(rv), err
}

func list(tx *bolt.Tx, k objects.Kind, ns string, opts ListOptions) ([]objects.Object, error) {
	var out []objects.Object
	c := tx.Bucket(bucketObjects).Bucket([]byte(k.Resource)).Cursor()
	var prefix []byte
	if k.Namespaced && ns != "" {
		prefix = []byte(ns + "/")
	}
	for kk, v := c.Seek(prefix); kk != nil && bytes.HasPrefix(kk, prefix); kk, v = c.Next() {
		o, err := decode(k, v)
		if err != nil {
			return nil, err
		}
		if opts.matches(o) {
			out = append(out, o)
		}
	}
	sortObjects(out)
	return out, nil
}

// Update replaces an object. When obj carries a resourceVersion it must be
// the stored one (else a Conflict error, as Kubernetes' optimistic
// concurrency); an empty one updates unconditionally. uid,
// creationTimestamp and the deletion fields are kept from the stored
// object; generation grows when the spec changes. An update that changes
// nothing returns the stored object and notifies no watcher.
func (s *Store) Update(ctx context.Context, obj objects.Object, opts ...Option) (objects.Object, error) {
	k, err := objects.ForObject(obj)
	if err != nil {
		return nil, err
	}
	return s.GuaranteedUpdate(ctx, k.Resource, obj.GetNamespace(), obj.GetName(), func(cur objects.Object) (objects.Object, error) {
		if rv := obj.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
			return nil, conflict(k, obj.GetName())
		}
		return obj.DeepCopyObject().(objects.Object), nil
	}, opts...)
}

func conflict(k objects.Kind, name string) error {
	return apierrors.NewConflict(k.GroupResource(), name,
		errors.New("the object has been modified; please apply your changes to the latest version and try again"))
}

// GuaranteedUpdate reads an object and stores what fn makes of it, in one
// transaction, so no other write can come between. fn gets a copy it may
// change and return; an error from fn aborts the update and is returned.
// This is how the pod worker writes status without conflicts.
func (s *Store) GuaranteedUpdate(ctx context.Context, resource, ns, name string, fn func(cur objects.Object) (objects.Object, error), opts ...Option) (objects.Object, error) {
	k, err := kindOf(resource)
	if err != nil {
		return nil, err
	}
	var result objects.Object
	err = s.write(ctx, opts, func(tx *bolt.Tx, record func(change)) error {
		old, err := get(tx, k, ns, name)
		if err != nil {
			return err
		}
		o, err := fn(old.DeepCopyObject().(objects.Object))
		if err != nil {
			return err
		}
		if o.GetName() != name || (k.Namespaced && o.GetNamespace() != ns && o.GetNamespace() != "") {
			return apierrors.NewBadRequest(fmt.Sprintf("%s %q: an update cannot change the name or namespace", k.Resource, name))
		}
		o.GetObjectKind().SetGroupVersionKind(k.GVK)
		o.SetNamespace(old.GetNamespace())
		o.SetUID(old.GetUID())
		o.SetCreationTimestamp(old.GetCreationTimestamp())
		o.SetDeletionTimestamp(old.GetDeletionTimestamp())
		o.SetDeletionGracePeriodSeconds(old.GetDeletionGracePeriodSeconds())
		o.SetGeneration(old.GetGeneration())
		o.SetResourceVersion(old.GetResourceVersion())
		if same(old, o) {
			result = old
			return nil
		}
		if k.HasGeneration && !sameSpec(old, o) {
			o.SetGeneration(old.GetGeneration() + 1)
		}
		rv, err := nextRV(tx)
		if err != nil {
			return err
		}
		o.SetResourceVersion(formatRV(rv))
		if err := put(tx, k, o); err != nil {
			return err
		}
		record(change{rv: rv, resource: k.Resource, typ: watch.Modified, obj: o, old: old})
		result = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	return result.DeepCopyObject().(objects.Object), nil
}

func same(a, b objects.Object) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func sameSpec(a, b objects.Object) bool {
	spec := func(o objects.Object) []byte {
		var m struct {
			Spec json.RawMessage `json:"spec"`
		}
		j, _ := json.Marshal(o)
		_ = json.Unmarshal(j, &m)
		return m.Spec
	}
	return bytes.Equal(spec(a), spec(b))
}

// DeleteOptions adjust a Delete.
type DeleteOptions struct {
	// GracePeriodSeconds overrides a pod's terminationGracePeriodSeconds;
	// 0 removes the pod at once. Only pods have a grace period.
	GracePeriodSeconds *int64
	// Preconditions: when set, the stored object must have this uid and
	// resourceVersion, or the delete fails with a Conflict.
	Preconditions metav1.Preconditions
	DryRun        bool
}

// Delete deletes an object. It returns the object's last state and whether
// it is gone: a pod deleted gracefully (Options.GracefulPodDeletion) and a
// namespace still holding such pods are only marked, with
// deletionTimestamp set, and go away later. Deleting a namespace deletes
// everything in it.
func (s *Store) Delete(ctx context.Context, resource, ns, name string, opts DeleteOptions) (objects.Object, bool, error) {
	k, err := kindOf(resource)
	if err != nil {
		return nil, false, err
	}
	var wopts []Option
	if opts.DryRun {
		wopts = append(wopts, DryRun())
	}
	var (
		last    objects.Object
		removed bool
	)
	err = s.write(ctx, wopts, func(tx *bolt.Tx, record func(change)) error {
		o, err := get(tx, k, ns, name)
		if err != nil {
			return err
		}
		if p := opts.Preconditions; (p.UID != nil && *p.UID != o.GetUID()) || (p.ResourceVersion != nil && *p.ResourceVersion != o.GetResourceVersion()) {
			return apierrors.NewConflict(k.GroupResource(), name, fmt.Errorf("the precondition for the delete does not hold: stored uid %s, resourceVersion %s", o.GetUID(), o.GetResourceVersion()))
		}
		switch k.Resource {
		case "namespaces":
			for _, im := range ImmortalNamespaces {
				if name == im {
					return apierrors.NewForbidden(k.GroupResource(), name, errors.New("this namespace may not be deleted"))
				}
			}
			last, removed, err = s.deleteNamespace(tx, o.(*corev1.Namespace), record)
		case "pods":
			last, removed, err = s.deletePod(tx, k, o.(*corev1.Pod), opts.GracePeriodSeconds, record)
		default:
			last, err = remove(tx, k, o, record)
			removed = err == nil
		}
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return last.DeepCopyObject().(objects.Object), removed, nil
}

// remove deletes o for good and, when o was the last pod of a terminating
// namespace, that namespace too.
func remove(tx *bolt.Tx, k objects.Kind, o objects.Object, record func(change)) (objects.Object, error) {
	if err := tx.Bucket(bucketObjects).Bucket([]byte(k.Resource)).Delete(key(k, o.GetNamespace(), o.GetName())); err != nil {
		return nil, err
	}
	rv, err := nextRV(tx)
	if err != nil {
		return nil, err
	}
	o.SetResourceVersion(formatRV(rv))
	record(change{rv: rv, resource: k.Resource, typ: watch.Deleted, obj: o})
	if k.Resource == "pods" {
		if err := finishNamespace(tx, o.GetNamespace(), record); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// finishNamespace removes a terminating namespace once no pod is left in
// it.
func finishNamespace(tx *bolt.Tx, ns string, record func(change)) error {
	nk, _ := objects.ForResource("namespaces")
	n, err := get(tx, nk, "", ns)
	if err != nil || n.GetDeletionTimestamp() == nil {
		return nil
	}
	pk, _ := objects.ForResource("pods")
	pods, err := list(tx, pk, ns, ListOptions{})
	if err != nil || len(pods) > 0 {
		return err
	}
	_, err = remove(tx, nk, n, record)
	return err
}

func (s *Store) deletePod(tx *bolt.Tx, k objects.Kind, p *corev1.Pod, grace *int64, record func(change)) (objects.Object, bool, error) {
	g := objects.DefaultTerminationGracePeriodSeconds
	if p.Spec.TerminationGracePeriodSeconds != nil {
		g = *p.Spec.TerminationGracePeriodSeconds
	}
	if grace != nil {
		g = *grace
	}
	if g < 0 {
		g = 0
	}
	// Pods that ran to completion have nothing left to stop.
	terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	if !s.opts.GracefulPodDeletion || g == 0 || terminal {
		o, err := remove(tx, k, p, record)
		return o, err == nil, err
	}
	if p.DeletionGracePeriodSeconds != nil && *p.DeletionGracePeriodSeconds <= g {
		return p, false, nil // already terminating, at least as fast
	}
	old := p.DeepCopy()
	ts := metav1.NewTime(s.opts.Now().Add(time.Duration(g) * time.Second).Truncate(time.Second))
	p.DeletionTimestamp = &ts
	p.DeletionGracePeriodSeconds = &g
	p.Generation++
	rv, err := nextRV(tx)
	if err != nil {
		return nil, false, err
	}
	p.ResourceVersion = formatRV(rv)
	if err := put(tx, k, p); err != nil {
		return nil, false, err
	}
	record(change{rv: rv, resource: k.Resource, typ: watch.Modified, obj: p, old: old})
	return p, false, nil
}

// deleteNamespace marks the namespace Terminating, deletes what it holds
// (pods through their graceful path) and removes it when no pod is left.
func (s *Store) deleteNamespace(tx *bolt.Tx, n *corev1.Namespace, record func(change)) (objects.Object, bool, error) {
	nk, _ := objects.ForResource("namespaces")
	if n.DeletionTimestamp == nil {
		old := n.DeepCopy()
		ts := metav1.NewTime(s.opts.Now().Truncate(time.Second))
		n.DeletionTimestamp = &ts
		n.Status.Phase = corev1.NamespaceTerminating
		rv, err := nextRV(tx)
		if err != nil {
			return nil, false, err
		}
		n.ResourceVersion = formatRV(rv)
		if err := put(tx, nk, n); err != nil {
			return nil, false, err
		}
		record(change{rv: rv, resource: nk.Resource, typ: watch.Modified, obj: n, old: old})
	}
	for _, k := range objects.Kinds() {
		if !k.Namespaced {
			continue
		}
		items, err := list(tx, k, n.Name, ListOptions{})
		if err != nil {
			return nil, false, err
		}
		for _, o := range items {
			if k.Resource == "pods" {
				if _, _, err := s.deletePod(tx, k, o.(*corev1.Pod), nil, func(c change) {
					// A pod removed here must not finish the namespace
					// mid-loop; it is finished below.
					record(c)
				}); err != nil {
					return nil, false, err
				}
				continue
			}
			if _, err := remove(tx, k, o, record); err != nil {
				return nil, false, err
			}
		}
	}
	cur, err := get(tx, nk, "", n.Name)
	if apierrors.IsNotFound(err) {
		// The last pod's removal finished the namespace already.
		return n, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := finishNamespace(tx, n.Name, record); err != nil {
		return nil, false, err
	}
	if _, err := get(tx, nk, "", n.Name); apierrors.IsNotFound(err) {
		return cur, true, nil
	}
	return cur, false, nil
}

// FieldSet is the set of fields a field selector can match on an object:
// metadata.name and metadata.namespace for all, plus the fields Kubernetes
// offers per kind (a pod's spec.nodeName and status.phase, an event's
// involvedObject.*, reason and type, a secret's type).
func FieldSet(o objects.Object) fields.Set {
	s := fields.Set{"metadata.name": o.GetName(), "metadata.namespace": o.GetNamespace()}
	switch x := o.(type) {
	case *corev1.Pod:
		s["spec.nodeName"] = x.Spec.NodeName
		s["spec.restartPolicy"] = string(x.Spec.RestartPolicy)
		s["status.phase"] = string(x.Status.Phase)
	case *corev1.Event:
		s["involvedObject.kind"] = x.InvolvedObject.Kind
		s["involvedObject.namespace"] = x.InvolvedObject.Namespace
		s["involvedObject.name"] = x.InvolvedObject.Name
		s["involvedObject.uid"] = string(x.InvolvedObject.UID)
		s["involvedObject.apiVersion"] = x.InvolvedObject.APIVersion
		s["involvedObject.resourceVersion"] = x.InvolvedObject.ResourceVersion
		s["involvedObject.fieldPath"] = x.InvolvedObject.FieldPath
		s["reason"] = x.Reason
		s["source"] = x.Source.Component
		s["type"] = x.Type
	case *corev1.Secret:
		s["type"] = string(x.Type)
	case *corev1.Namespace:
		s["status.phase"] = string(x.Status.Phase)
	}
	return s
}

// sortObjects orders objects by namespace, then name.
func sortObjects(os []objects.Object) {
	sort.Slice(os, func(i, j int) bool {
		a, b := os[i], os[j]
		if a.GetNamespace() != b.GetNamespace() {
			return a.GetNamespace() < b.GetNamespace()
		}
		return strings.Compare(a.GetName(), b.GetName()) < 0
	})
}
