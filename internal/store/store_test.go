package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/peapod/peapod/internal/objects"
)

func open(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "objects.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pod(ns, name string, lbl map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	objects.SetDefaults(p)
	return p
}

func TestCreateSetsMetadata(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{})
	p, err := s.Create(ctx, pod("default", "a", nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.GetUID()) != 36 || p.GetUID()[14] != '4' {
		t.Errorf("uid %q is not a UUID v4", p.GetUID())
	}
	if p.GetGeneration() != 1 || p.GetCreationTimestamp().Time.IsZero() || p.GetResourceVersion() == "" {
		t.Errorf("metadata not set: %+v", p)
	}
	q, err := s.Create(ctx, pod("default", "b", nil))
	if err != nil {
		t.Fatal(err)
	}
	if q.GetResourceVersion() <= p.GetResourceVersion() && len(q.GetResourceVersion()) <= len(p.GetResourceVersion()) {
		t.Errorf("resourceVersion did not grow: %s then %s", p.GetResourceVersion(), q.GetResourceVersion())
	}
	_, err = s.Create(ctx, pod("default", "a", nil))
	if !apierrors.IsAlreadyExists(err) || err.Error() != `pods "a" already exists` {
		t.Errorf("second create: %v", err)
	}
	_, err = s.Get(ctx, "pods", "default", "zz")
	if !apierrors.IsNotFound(err) || err.Error() != `pods "zz" not found` {
		t.Errorf("get missing: %v", err)
	}
	_, err = s.Create(ctx, pod("nope", "a", nil))
	if !apierrors.IsNotFound(err) || err.Error() != `namespaces "nope" not found` {
		t.Errorf("create in a missing namespace: %v", err)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "s"}}
	o, err := s.Create(ctx, sec, DryRun())
	if err != nil || o.GetUID() == "" {
		t.Fatalf("dry run: %v %v", o, err)
	}
	if _, err := s.Get(ctx, "secrets", "default", "s"); !apierrors.IsNotFound(err) {
		t.Errorf("dry run stored the object: %v", err)
	}
}

func TestInitialNamespacesSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "objects.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(context.Background(), pod("default", "a", nil)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nss, _, err := s.List(context.Background(), "namespaces", "", ListOptions{})
	if err != nil || len(nss) != 2 || nss[0].GetName() != "default" || nss[1].GetName() != "kube-system" {
		t.Fatalf("namespaces %v %v", nss, err)
	}
	if _, err := s.Get(context.Background(), "pods", "default", "a"); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Delete(context.Background(), "namespaces", "", "default", DeleteOptions{})
	if !apierrors.IsForbidden(err) || err.Error() != `namespaces "default" is forbidden: this namespace may not be deleted` {
		t.Errorf("delete default: %v", err)
	}
}

func TestUpdateConcurrencyAndGeneration(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{})
	o, _ := s.Create(ctx, pod("default", "a", nil))
	p := o.(*corev1.Pod)

	p.Labels = map[string]string{"x": "y"}
	o2, err := s.Update(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if o2.GetGeneration() != 1 {
		t.Errorf("label change bumped generation to %d", o2.GetGeneration())
	}
	p.Spec.Containers[0].Image = "busybox:2"
	_, err = s.Update(ctx, p) // p carries the first resourceVersion
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `Operation cannot be fulfilled on pods "a": the object has been modified`) {
		t.Fatalf("stale update: %v", err)
	}
	p.ResourceVersion = o2.GetResourceVersion()
	o3, err := s.Update(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if o3.GetGeneration() != 2 || o3.GetUID() != o.GetUID() {
		t.Errorf("spec change: generation %d uid %s", o3.GetGeneration(), o3.GetUID())
	}
	o4, err := s.Update(ctx, o3)
	if err != nil || o4.GetResourceVersion() != o3.GetResourceVersion() {
		t.Errorf("no-op update changed the resourceVersion: %v %v", o4, err)
	}
}

func TestListSelectors(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{})
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}
	if _, err := s.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{pod("default", "a", map[string]string{"app": "web"}), pod("default", "b", map[string]string{"app": "db"}), pod("other", "c", map[string]string{"app": "web"})} {
		if _, err := s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ns string, lo ListOptions) string {
		items, _, err := s.List(ctx, "pods", ns, lo)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range items {
			out = append(out, o.GetNamespace()+"/"+o.GetName())
		}
		return strings.Join(out, ",")
	}
	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	for _, tc := range []struct {
		ns   string
		lo   ListOptions
		want string
	}{
		{"default", ListOptions{}, "default/a,default/b"},
		{"", ListOptions{}, "default/a,default/b,other/c"},
		{"", ListOptions{Labels: web}, "default/a,other/c"},
		{"default", ListOptions{Labels: web}, "default/a"},
		{"", ListOptions{Fields: fields.OneTermEqualSelector("metadata.name", "b")}, "default/b"},
	} {
		if got := names(tc.ns, tc.lo); got != tc.want {
			t.Errorf("list %q %v: %s, want %s", tc.ns, tc.lo, got, tc.want)
		}
	}
}

func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return watch.Event{}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := open(t, Options{})
	a, _ := s.Create(ctx, pod("default", "a", map[string]string{"app": "web"}))
	_, rv, _ := s.List(ctx, "pods", "", ListOptions{})

	all, err := s.Watch(ctx, "pods", "", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, all); ev.Type != watch.Added || ev.Object.(*corev1.Pod).Name != "a" {
		t.Fatalf("initial event %v", ev)
	}
	web, err := s.Watch(ctx, "pods", "default", ListOptions{Labels: labels.SelectorFromSet(labels.Set{"app": "web"}), ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Create(ctx, pod("default", "b", map[string]string{"app": "db"}))
	p := a.(*corev1.Pod)
	p.Labels["app"] = "gone"
	p.ResourceVersion = ""
	if _, err := s.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Delete(ctx, "pods", "default", "b", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		typ  watch.EventType
		name string
	}{{watch.Added, "b"}, {watch.Modified, "a"}, {watch.Deleted, "b"}} {
		ev := next(t, all)
		if ev.Type != w.typ || ev.Object.(*corev1.Pod).Name != w.name {
			t.Errorf("all: got %s %s, want %v", ev.Type, ev.Object.(*corev1.Pod).Name, w)
		}
	}
	// The selector watch sees a stop matching as DELETED, and nothing of b.
	if ev := next(t, web); ev.Type != watch.Deleted || ev.Object.(*corev1.Pod).Name != "a" {
		t.Errorf("web: %s %v", ev.Type, ev.Object)
	}
	_ = b
	// Resume from a version: only what came after.
	resumed, err := s.Watch(ctx, "pods", "", ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, resumed); ev.Type != watch.Added || ev.Object.(*corev1.Pod).Name != "b" {
		t.Errorf("resumed: %s %v", ev.Type, ev.Object)
	}
	cancel()
	for range all.ResultChan() {
	}
}

func TestWatchTooOld(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{WatchBacklog: 2})
	for _, n := range []string{"a", "b", "c", "d"} {
		if _, err := s.Create(ctx, pod("default", n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Watch(ctx, "pods", "", ListOptions{ResourceVersion: "1"})
	if !apierrors.IsResourceExpired(err) {
		t.Fatalf("watch from a forgotten version: %v", err)
	}
}

func TestDeleteNamespaceDeletesContents(t *testing.T) {
	ctx := context.Background()
	for _, graceful := range []bool{false, true} {
		s := open(t, Options{GracefulPodDeletion: graceful})
		if _, err := s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}); err != nil {
			t.Fatal(err)
		}
		s.Create(ctx, pod("app", "p", nil))
		s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "s"}})
		s.Create(ctx, pod("default", "keep", nil))

		_, removed, err := s.Delete(ctx, "namespaces", "", "app", DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "secrets", "app", "s"); !apierrors.IsNotFound(err) {
			t.Errorf("graceful=%v: secret survived: %v", graceful, err)
		}
		if _, err := s.Get(ctx, "pods", "default", "keep"); err != nil {
			t.Errorf("pod in another namespace deleted: %v", err)
		}
		if !graceful {
			if !removed {
				t.Error("namespace not removed")
			}
			if _, err := s.Get(ctx, "pods", "app", "p"); !apierrors.IsNotFound(err) {
				t.Errorf("pod survived: %v", err)
			}
			continue
		}
		// Graceful: the pod is terminating and holds the namespace.
		if removed {
			t.Error("namespace removed while its pod terminates")
		}
		p, err := s.Get(ctx, "pods", "app", "p")
		if err != nil || p.GetDeletionTimestamp() == nil || *p.GetDeletionGracePeriodSeconds() != 30 {
			t.Fatalf("pod not marked for graceful deletion: %v %v", p, err)
		}
		ns, _ := s.Get(ctx, "namespaces", "", "app")
		if ns.(*corev1.Namespace).Status.Phase != corev1.NamespaceTerminating {
			t.Errorf("namespace phase %s", ns.(*corev1.Namespace).Status.Phase)
		}
		if _, err := s.Create(ctx, pod("app", "new", nil)); !apierrors.IsForbidden(err) ||
			!strings.Contains(err.Error(), "unable to create new content in namespace app because it is being terminated") {
			t.Errorf("create in terminating namespace: %v", err)
		}
		// The pod worker finishes the pod: the namespace goes too.
		zero := int64(0)
		if _, removed, err := s.Delete(ctx, "pods", "app", "p", DeleteOptions{GracePeriodSeconds: &zero}); err != nil || !removed {
			t.Fatalf("final pod delete: %v %v", removed, err)
		}
		if _, err := s.Get(ctx, "namespaces", "", "app"); !apierrors.IsNotFound(err) {
			t.Errorf("namespace outlived its last pod: %v", err)
		}
	}
}
