package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/peapod/peapod/internal/cgroup"
	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
	imagestore "github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/objects"
	"github.com/peapod/peapod/internal/store"
)

type fakeImages struct {
	present map[string]*imagestore.Image
	pulls   int
}

func (f *fakeImages) Status(name string) (*imagestore.Image, error) {
	if img, ok := f.present[name]; ok {
		return img, nil
	}
	if r, err := reference.Parse(name); err == nil {
		if img, ok := f.present[r.String()]; ok {
			return img, nil
		}
	}
	return nil, fmt.Errorf("image %s: %w", name, image.ErrNotFound)
}

func (f *fakeImages) Pull(_ context.Context, ref string, _ []keyring.Credential, _ image.PullOptions) (*imagestore.Image, error) {
	f.pulls++
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	img := &imagestore.Image{ID: digest.FromString(r.String()), RepoDigests: []string{r.Name() + "@" + string(digest.FromString("m"+r.String()))},
		Pulls: []imagestore.PullRecord{{Anonymous: true, Reference: r.String()}}}
	f.present[r.String()] = img
	f.present[img.ID.String()] = img
	return img, nil
}

type harness struct {
	t       *testing.T
	ctx     context.Context
	clk     *clocktesting.FakeClock
	rt      *fakeRuntime
	store   *store.Store
	images  *fakeImages
	k       *Kubelet
	root    string
	workers map[string]*worker
	cgroups *fakeCgroups
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	root := t.TempDir()
	st, err := store.Open(filepath.Join(root, "objects.db"), store.Options{GracefulPodDeletion: true, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, ctx: context.Background(), clk: clk, rt: newFakeRuntime(clk), store: st,
		images: &fakeImages{present: map[string]*imagestore.Image{}}, root: root, workers: map[string]*worker{},
		cgroups: &fakeCgroups{made: map[string]cgroup.Resources{}}}
	h.k = h.newKubelet()
	return h
}

func (h *harness) newKubelet() *Kubelet {
	k, err := New(Options{Root: h.root, Runtime: h.rt, Store: h.store, Images: h.images, Clock: h.clk,
		NodeName: "node1", HostIP: "192.0.2.10", PodCgroups: h.cgroups, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.t.Fatal(err)
	}
	k.probes.manual = true // tests run the probes with probeAll
	return k
}

func (h *harness) create(obj objects.Object) {
	h.t.Helper()
	objects.SetDefaults(obj)
	if _, err := h.store.Create(h.ctx, obj); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	o, err := h.store.Get(h.ctx, "pods", "default", name)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.(*corev1.Pod)
}

// sync runs one sync of the pod's worker.
func (h *harness) sync(name string) {
	h.t.Helper()
	p := h.pod(name)
	w, ok := h.workers[name]
	if !ok || w.k != h.k {
		w = newWorker(h.k, p)
		h.workers[name] = w
	}
	w.update(p, false)
	if done := w.sync(h.ctx); done {
		h.t.Fatalf("worker of %s finished", name)
	}
}

func (h *harness) status(name, container string) corev1.ContainerStatus {
	h.t.Helper()
	p := h.pod(name)
	for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if s.Name == container {
			return s
		}
	}
	h.t.Fatalf("pod %s has no status for container %s: %+v", name, container, p.Status)
	return corev1.ContainerStatus{}
}

// events lists "Type Reason Message" of the pod's events, oldest first.
func (h *harness) events(name string) []string {
	h.t.Helper()
	list, _, err := h.store.List(h.ctx, "events", "default", store.ListOptions{Fields: fields.OneTermEqualSelector("involvedObject.name", name)})
	if err != nil {
		h.t.Fatal(err)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].GetName() < list[j].GetName() })
	var out []string
	for _, o := range list {
		e := o.(*corev1.Event)
		out = append(out, fmt.Sprintf("%s %s %s", e.Type, e.Reason, e.Message))
	}
	return out
}

func (h *harness) hasEvent(name, want string) bool {
	for _, e := range h.events(name) {
		if strings.HasPrefix(e, want) {
			return true
		}
	}
	return false
}

func simplePod(name string, policy corev1.RestartPolicy, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	p.Spec.RestartPolicy = policy
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "127.0.0.1:5000/busybox:1", Command: []string{"sh"}})
	}
	return p
}
