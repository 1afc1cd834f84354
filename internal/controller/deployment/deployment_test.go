package deployment

import (
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/peapod/peapod/internal/objects"
	"github.com/peapod/peapod/internal/store"
)

type harness struct {
	t     *testing.T
	ctx   context.Context
	store *store.Store
	clock *clocktesting.FakeClock
	c     *Controller
}

// newHarness opens a real object store in a temporary directory. With
// graceful set, deleted pods stay (terminating) until finish is called, as
// with a pod worker.
func newHarness(t *testing.T, graceful bool) *harness {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	log := slog.New(slog.DiscardHandler)
	st, err := store.Open(filepath.Join(t.TempDir(), "objects.db"), store.Options{GracefulPodDeletion: graceful, Now: clk.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &harness{t: t, ctx: context.Background(), store: st, clock: clk, c: New(Options{Store: st, Clock: clk, Logger: log})}
}

func deployment(name string, replicas int32, image string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	objects.SetDefaults(d)
	return d
}

func (h *harness) create(d *appsv1.Deployment) *appsv1.Deployment {
	h.t.Helper()
	if err := objects.Validate(d); err != nil {
		h.t.Fatal(err)
	}
	o, err := h.store.Create(h.ctx, d)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.(*appsv1.Deployment)
}

// update changes the Deployment's spec as a user would.
func (h *harness) update(name string, fn func(*appsv1.Deployment)) {
	h.t.Helper()
	_, err := h.store.GuaranteedUpdate(h.ctx, "deployments", "default", name, func(cur objects.Object) (objects.Object, error) {
		d := cur.(*appsv1.Deployment)
		fn(d)
		objects.SetDefaults(d)
		return d, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) sync(name string) time.Duration {
	h.t.Helper()
	after, err := h.c.Sync(h.ctx, "default", name)
	if err != nil {
		h.t.Fatalf("sync %s: %v", name, err)
	}
	return after
}

func (h *harness) get(name string) *appsv1.Deployment {
	h.t.Helper()
	o, err := h.store.Get(h.ctx, "deployments", "default", name)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.(*appsv1.Deployment)
}

// pods returns the deployment's pods (terminating ones too).
func (h *harness) pods(app string) []*corev1.Pod {
	h.t.Helper()
	items, _, err := h.store.List(h.ctx, "pods", "default", store.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*corev1.Pod
	for _, o := range items {
		if p := o.(*corev1.Pod); p.Labels["app"] == app {
			out = append(out, p)
		}
	}
	return out
}

func active(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func byHash(pods []*corev1.Pod, hash string) int {
	n := 0
	for _, p := range active(pods) {
		if p.Labels[objects.PodTemplateHashLabel] == hash {
			n++
		}
	}
	return n
}

// markReady plays the pod worker: the pod's Ready condition becomes True.
func (h *harness) markReady(p *corev1.Pod) {
	h.t.Helper()
	_, err := h.store.GuaranteedUpdate(h.ctx, "pods", p.Namespace, p.Name, func(cur objects.Object) (objects.Object, error) {
		cp := cur.(*corev1.Pod)
		cp.Status.Phase = corev1.PodRunning
		cp.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(h.clock.Now())}}
		return cp, nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) markAllReady(app string) {
	for _, p := range active(h.pods(app)) {
		if !ready(p) {
			h.markReady(p)
		}
	}
}

// finish plays the pod worker for terminating pods: they go away.
func (h *harness) finish(app string) {
	zero := int64(0)
	for _, p := range h.pods(app) {
		if p.DeletionTimestamp != nil {
			if _, _, err := h.store.Delete(h.ctx, "pods", p.Namespace, p.Name, store.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
				h.t.Fatal(err)
			}
		}
	}
}

func condition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) appsv1.DeploymentCondition {
	if c := getCondition(d.Status, typ); c != nil {
		return *c
	}
	return appsv1.DeploymentCondition{}
}

func TestPodsNamedLabelledAndOwnedAsKubernetes(t *testing.T) {
	h := newHarness(t, false)
	d := h.create(deployment("web", 3, "busybox:1.36"))
	h.sync("web")
	hash := objects.PodTemplateHash(&d.Spec.Template, nil)
	pods := h.pods("web")
	if len(pods) != 3 {
		t.Fatalf("%d pods, want 3", len(pods))
	}
	name := regexp.MustCompile(`^web-` + hash + `-[bcdfghjklmnpqrstvwxz2456789]{5}$`)
	for _, p := range pods {
		if !name.MatchString(p.Name) {
			t.Errorf("pod name %q is not web-%s-xxxxx", p.Name, hash)
		}
		if p.Labels[objects.PodTemplateHashLabel] != hash || p.Labels["app"] != "web" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != "web" || ref.UID != d.UID || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("pod %s ownerReferences %+v", p.Name, p.OwnerReferences)
		}
		if p.Spec.RestartPolicy != corev1.RestartPolicyAlways || p.Status.Phase != corev1.PodPending {
			t.Errorf("pod %s not defaulted like a pod: %+v", p.Name, p.Spec)
		}
	}
	got := h.get("web")
	st := got.Status
	if st.Replicas != 3 || st.UpdatedReplicas != 3 || st.ReadyReplicas != 0 || st.AvailableReplicas != 0 || st.UnavailableReplicas != 3 || st.ObservedGeneration != got.Generation {
		t.Errorf("status %+v", st)
	}
	if c := condition(got, appsv1.DeploymentAvailable); c.Status != corev1.ConditionFalse || c.Reason != "MinimumReplicasUnavailable" || c.Message != "Deployment does not have minimum availability." {
		t.Errorf("Available %+v", c)
	}
	if c := condition(got, appsv1.DeploymentProgressing); c.Status != corev1.ConditionTrue || c.Reason != "NewReplicaSetCreated" || c.Message != `Created new replica set "web-`+hash+`"` {
		t.Errorf("Progressing %+v", c)
	}

	// A second sync changes nothing: no new pods, no status write.
	rv := got.ResourceVersion
	h.sync("web")
	if n := len(h.pods("web")); n != 3 {
		t.Errorf("second sync: %d pods", n)
	}
	if h.get("web").ResourceVersion != rv {
		t.Errorf("a sync without changes rewrote the deployment")
	}

	h.markAllReady("web")
	h.sync("web")
	got = h.get("web")
	if st := got.Status; st.ReadyReplicas != 3 || st.AvailableReplicas != 3 || st.UnavailableReplicas != 0 {
		t.Errorf("status after ready %+v", st)
	}
	if c := condition(got, appsv1.DeploymentAvailable); c.Status != corev1.ConditionTrue || c.Reason != "MinimumReplicasAvailable" || c.Message != "Deployment has minimum availability." {
		t.Errorf("Available %+v", c)
	}
	if c := condition(got, appsv1.DeploymentProgressing); c.Reason != "NewReplicaSetAvailable" || c.Message != `ReplicaSet "web-`+hash+`" has successfully progressed.` {
		t.Errorf("Progressing %+v", c)
	}
}

func TestScaleAndReplaceDeletedPods(t *testing.T) {
	h := newHarness(t, false)
	h.create(deployment("web", 2, "busybox:1.36"))
	h.sync("web")

	h.update("web", func(d *appsv1.Deployment) { five := int32(5); d.Spec.Replicas = &five })
	h.sync("web")
	if n := len(h.pods("web")); n != 5 {
		t.Fatalf("scaled to 5: %d pods", n)
	}

	// Scaling down removes pods that are not ready first.
	pods := h.pods("web")
	keep := map[string]bool{pods[1].Name: true, pods[3].Name: true}
	h.markReady(pods[1])
	h.markReady(pods[3])
	h.update("web", func(d *appsv1.Deployment) { two := int32(2); d.Spec.Replicas = &two })
	h.sync("web")
	pods = h.pods("web")
	if len(pods) != 2 || !keep[pods[0].Name] || !keep[pods[1].Name] {
		t.Errorf("scaled to 2 kept %v, want the ready %v", names(pods), keep)
	}
	if got := h.get("web").Status; got.Replicas != 2 || got.ObservedGeneration != 3 {
		t.Errorf("status after scaling %+v", got)
	}

	// A deleted pod is replaced by a new one.
	if _, _, err := h.store.Delete(h.ctx, "pods", "default", pods[0].Name, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sync("web")
	after := h.pods("web")
	if len(after) != 2 || (after[0].Name != pods[1].Name && after[1].Name != pods[1].Name) {
		t.Errorf("after deleting %s: %v", pods[0].Name, names(after))
	}
	for _, p := range after {
		if p.Name == pods[0].Name {
			t.Errorf("deleted pod %s still there", p.Name)
		}
	}

	h.update("web", func(d *appsv1.Deployment) { zero := int32(0); d.Spec.Replicas = &zero })
	h.sync("web")
	if n := len(h.pods("web")); n != 0 {
		t.Errorf("scaled to 0: %d pods", n)
	}

	hash := objects.PodTemplateHash(&h.get("web").Spec.Template, nil)
	evs := h.events()
	for _, want := range []string{
		"ScalingReplicaSet: Scaled up replica set web-" + hash + " from 0 to 2",
		"ScalingReplicaSet: Scaled up replica set web-" + hash + " from 2 to 5",
		"ScalingReplicaSet: Scaled down replica set web-" + hash + " from 5 to 2",
		"SuccessfulCreate: Created pod: web-" + hash + "-",
		"ScalingReplicaSet: Scaled down replica set web-" + hash + " from 2 to 0",
	} {
		if !strings.Contains(evs, want) {
			t.Errorf("events lack %q:\n%s", want, evs)
		}
	}
	if strings.Contains(evs, "from 1 to 2") {
		t.Errorf("replacing a deleted pod was reported as scaling:\n%s", evs)
	}
}

// events returns the Deployment events as "Reason: message" lines.
func (h *harness) events() string {
	h.t.Helper()
	items, _, err := h.store.List(h.ctx, "events", "default", store.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var lines []string
	for _, o := range items {
		e := o.(*corev1.Event)
		if e.InvolvedObject.Kind == "Deployment" && e.Source.Component == Component {
			lines = append(lines, e.Reason+": "+e.Message)
		}
	}
	return strings.Join(lines, "\n")
}

func names(pods []*corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// A rolling update with a pod worker: the pods move to the new template
// without ever exceeding replicas+maxSurge or falling below
// replicas-maxUnavailable available pods.
func TestRollingUpdateKeepsAvailability(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		replicas                   int32
		surge, unavailable         intstr.IntOrString
		maxTotal, minAvailableSeen int
	}{
		{"defaults 25%/25% of 4", 4, intstr.FromString("25%"), intstr.FromString("25%"), 5, 3},
		{"defaults of 1", 1, intstr.FromString("25%"), intstr.FromString("25%"), 2, 1},
		{"surge only", 3, intstr.FromInt32(1), intstr.FromInt32(0), 4, 3},
		{"unavailable only", 3, intstr.FromInt32(0), intstr.FromInt32(1), 3, 2},
		// Both round to 0: Kubernetes then lets 1 be unavailable.
		{"0% surge, 10% unavailable of 2", 2, intstr.FromString("0%"), intstr.FromString("10%"), 2, 1},
		// 10% of 2 rounds to 1 surge (up) and 0 unavailable (down).
		{"10% of 2", 2, intstr.FromString("10%"), intstr.FromString("10%"), 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			d := deployment("web", tc.replicas, "busybox:1.36")
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &tc.surge, MaxUnavailable: &tc.unavailable}
			h.create(d)
			h.sync("web")
			h.markAllReady("web")
			h.sync("web")
			oldHash := objects.PodTemplateHash(&h.get("web").Spec.Template, nil)

			h.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "busybox:1.37" })
			newHash := objects.PodTemplateHash(&h.get("web").Spec.Template, nil)
			if newHash == oldHash {
				t.Fatal("template change kept the hash")
			}
			for step := 0; ; step++ {
				if step > 50 {
					t.Fatalf("rollout did not finish: %d old, %d new", byHash(h.pods("web"), oldHash), byHash(h.pods("web"), newHash))
				}
				h.sync("web")
				pods := h.pods("web")
				if n := len(active(pods)); n > tc.maxTotal {
					t.Fatalf("step %d: %d pods, more than replicas+maxSurge = %d", step, n, tc.maxTotal)
				}
				avail := 0
				for _, p := range active(pods) {
					if ready(p) {
						avail++
					}
				}
				if avail < tc.minAvailableSeen {
					t.Fatalf("step %d: %d available pods, fewer than %d", step, avail, tc.minAvailableSeen)
				}
				if byHash(pods, oldHash) == 0 && byHash(pods, newHash) == int(tc.replicas) {
					break
				}
				// The pod worker: old pods end, new pods become ready.
				h.finish("web")
				h.markAllReady("web")
			}
			h.finish("web")
			h.markAllReady("web")
			h.sync("web")
			got := h.get("web")
			if st := got.Status; st.UpdatedReplicas != tc.replicas || st.Replicas != tc.replicas || st.AvailableReplicas != tc.replicas {
				t.Errorf("status after the rollout %+v", st)
			}
			if c := condition(got, appsv1.DeploymentProgressing); c.Reason != "NewReplicaSetAvailable" || !strings.Contains(c.Message, newHash) {
				t.Errorf("Progressing after the rollout %+v", c)
			}
		})
	}
}

// Without a pod worker no pod becomes ready: the rollout adds maxSurge
// new pods and waits, keeping the old ones, as Kubernetes would.
func TestRolloutWithoutReadinessStopsAtSurge(t *testing.T) {
	h := newHarness(t, false)
	h.create(deployment("web", 3, "busybox:1.36"))
	h.sync("web")
	h.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "busybox:1.37" })
	newHash := objects.PodTemplateHash(&h.get("web").Spec.Template, nil)
	for range 3 {
		h.sync("web")
	}
	pods := h.pods("web")
	if len(pods) != 4 || byHash(pods, newHash) != 1 {
		t.Fatalf("pods %v, want 3 old and 1 new (maxSurge 25%% of 3 rounds up to 1)", names(pods))
	}
	got := h.get("web")
	if st := got.Status; st.Replicas != 4 || st.UpdatedReplicas != 1 {
		t.Errorf("status %+v", st)
	}
	if c := condition(got, appsv1.DeploymentProgressing); c.Reason != "NewReplicaSetCreated" || !strings.Contains(c.Message, "web-"+newHash) {
		t.Errorf("Progressing %+v", c)
	}

	// Past progressDeadlineSeconds without progress the rollout is
	// reported as timed out.
	h.clock.Step(601 * time.Second)
	h.sync("web")
	if c := condition(h.get("web"), appsv1.DeploymentProgressing); c.Status != corev1.ConditionFalse || c.Reason != "ProgressDeadlineExceeded" ||
		c.Message != `ReplicaSet "web-`+newHash+`" has timed out progressing.` {
		t.Errorf("Progressing after the deadline %+v", c)
	}
}

func TestRecreateStopsOldPodsFirst(t *testing.T) {
	h := newHarness(t, true)
	d := deployment("web", 2, "busybox:1.36")
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	h.create(d)
	h.sync("web")
	h.update("web", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "busybox:1.37" })
	newHash := objects.PodTemplateHash(&h.get("web").Spec.Template, nil)
	h.sync("web")
	pods := h.pods("web")
	if len(active(pods)) != 0 || len(pods) != 2 {
		t.Fatalf("after the template change: %d pods, %d active; want the 2 old ones terminating", len(pods), len(active(pods)))
	}
	h.sync("web")
	if n := len(active(h.pods("web"))); n != 0 {
		t.Fatalf("new pods started while old ones were terminating: %d", n)
	}
	h.finish("web")
	h.sync("web")
	if pods := h.pods("web"); len(pods) != 2 || byHash(pods, newHash) != 2 {
		t.Errorf("after the old pods ended: %v", names(pods))
	}
}

func TestDeletedDeploymentsPodsAreCollected(t *testing.T) {
	h := newHarness(t, false)
	h.create(deployment("web", 2, "busybox:1.36"))
	h.create(deployment("db", 1, "busybox:1.36"))
	h.sync("web")
	h.sync("db")
	if _, _, err := h.store.Delete(h.ctx, "deployments", "default", "web", store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.sync("web")
	if pods := h.pods("web"); len(pods) != 0 {
		t.Errorf("pods of the deleted deployment remain: %v", names(pods))
	}
	if pods := h.pods("db"); len(pods) != 1 {
		t.Errorf("another deployment's pods were touched: %v", names(pods))
	}

	// A Deployment deleted and created again under the same name is a
	// new owner: the old one's pods go, the new one gets its own.
	old := h.pods("db")[0]
	if _, _, err := h.store.Delete(h.ctx, "deployments", "default", "db", store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	nd := h.create(deployment("db", 1, "busybox:1.36"))
	h.sync("db")
	h.sync("db")
	pods := h.pods("db")
	if len(pods) != 1 || pods[0].Name == old.Name || metav1.GetControllerOf(pods[0]).UID != nd.UID {
		t.Errorf("after re-creating db: %v (old pod %s)", names(pods), old.Name)
	}
}

func TestMinReadySeconds(t *testing.T) {
	h := newHarness(t, false)
	d := deployment("web", 1, "busybox:1.36")
	d.Spec.MinReadySeconds = 10
	h.create(d)
	h.sync("web")
	h.markAllReady("web")
	after := h.sync("web")
	if st := h.get("web").Status; st.ReadyReplicas != 1 || st.AvailableReplicas != 0 {
		t.Errorf("just ready: %+v", st)
	}
	if after <= 0 || after > 11*time.Second {
		t.Errorf("sync asked to be woken after %v, want about 10s", after)
	}
	h.clock.Step(10 * time.Second)
	h.sync("web")
	if st := h.get("web").Status; st.AvailableReplicas != 1 {
		t.Errorf("ready for minReadySeconds: %+v", st)
	}
}

// Run reacts to the store's watch: pods appear for a new Deployment, a
// deleted pod is replaced, and a deleted Deployment's pods go.
func TestRunFollowsTheStore(t *testing.T) {
	h := newHarness(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	h.create(deployment("web", 3, "busybox:1.36"))
	waitFor("3 pods", func() bool { return len(h.pods("web")) == 3 })
	victim := h.pods("web")[0].Name
	if _, _, err := h.store.Delete(h.ctx, "pods", "default", victim, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("a replacement pod", func() bool {
		pods := h.pods("web")
		for _, p := range pods {
			if p.Name == victim {
				return false
			}
		}
		return len(pods) == 3
	})
	if _, _, err := h.store.Delete(h.ctx, "deployments", "default", "web", store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the pods to be collected", func() bool { return len(h.pods("web")) == 0 })
}
