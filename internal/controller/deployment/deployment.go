// Package deployment is peapod's deployment controller: it keeps, for every
// apps/v1 Deployment in the object store, spec.replicas Pods made from the
// Deployment's template, rolls them to a new template, and reports the
// Deployment's status the way Kubernetes' controller does.
//
// ReplicaSets are not modelled. Kubernetes puts a ReplicaSet named
// <deployment>-<pod-template-hash> between a Deployment and its pods; on one
// host that layer only adds objects to keep in step, so here the pods
// themselves are grouped by their pod-template-hash label and are owned
// directly by the Deployment (an ownerReference with controller: true). What
// a user sees stays Kubernetes': pod names <deployment>-<hash>-<5 random
// characters>, the pod-template-hash label (Kubernetes' FNV hash of the
// template, see objects.PodTemplateHash), status counts and the Available and
// Progressing conditions with Kubernetes' reasons, whose messages name the
// group as Kubernetes would name its ReplicaSet. There is no `get rs`,
// revision history or rollback, and orphaned pods matching a selector are
// not adopted.
//
// Rolling updates follow Kubernetes' arithmetic: maxSurge rounds up,
// maxUnavailable down (1 when both come to 0); new pods are added while
// the total stays within replicas+maxSurge, and old pods are removed only
// while at least replicas-maxUnavailable pods stay available (Ready, for
// minReadySeconds). Readiness is the pods' Ready condition, which the pod
// worker writes. Without a pod worker pods stay Pending and never become
// available, so a rollout gets only as far as maxSurge lets it (with the
// defaults: one new pod beside the old ones) and then waits, as it would on
// a cluster whose new pods never become ready; a Recreate rollout and
// scaling do not depend on readiness.
//
// Deleting a Deployment deletes its pods: the controller plays the garbage
// collector for pods whose controlling owner is a Deployment that no longer
// exists (or exists with another uid), also for deletions that happened
// while the daemon was down.
//
// The controller is one goroutine, owned by the context given to Run, that
// reacts to the store's watch of Deployments and Pods.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"

	"github.com/peapod/peapod/internal/objects"
	"github.com/peapod/peapod/internal/store"
)

// Component is the source of the controller's events.
const Component = "deployment-controller"

// Kubernetes' reasons for the Deployment conditions
// (pkg/controller/deployment/util).
const (
	ReasonMinimumReplicasAvailable   = "MinimumReplicasAvailable"
	ReasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
	ReasonNewReplicaSetCreated       = "NewReplicaSetCreated"
	ReasonFoundNewReplicaSet         = "FoundNewReplicaSet"
	ReasonReplicaSetUpdated          = "ReplicaSetUpdated"
	ReasonNewReplicaSetAvailable     = "NewReplicaSetAvailable"
	ReasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
)

// retryAfter is how long a deployment whose sync failed waits for another
// try (a change to it or its pods comes sooner).
const retryAfter = 5 * time.Second

// Options configure a Controller.
type Options struct {
	Store *store.Store
	// Clock for minReadySeconds and progressDeadlineSeconds; the real
	// clock when nil.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Controller reconciles Deployments. Create it with New and start it with
// Run.
type Controller struct {
	store *store.Store
	clock clock.Clock
	log   *slog.Logger
}

// New returns a controller over the given store.
func New(opts Options) *Controller {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Controller{store: opts.Store, clock: opts.Clock, log: opts.Logger.With("controller", "deployment")}
}

// Run reconciles until ctx ends. It watches Deployments and Pods; a change
// to either syncs the Deployment concerned. When a watch ends (the store
// stopped it, or it fell behind) Run lists and watches again.
func (c *Controller) Run(ctx context.Context) error {
	for {
		err := c.watchOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("watch ended; watching again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(time.Second):
		}
	}
}

type key struct{ ns, name string }

func (c *Controller) watchOnce(ctx context.Context) error {
	dw, err := c.store.Watch(ctx, "deployments", "", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("watch deployments: %w", err)
	}
	defer dw.Stop()
	pw, err := c.store.Watch(ctx, "pods", "", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	defer pw.Stop()
	// Pods of Deployments deleted while the daemon was down.
	if err := c.collectGarbage(ctx, ""); err != nil {
		c.log.Warn("garbage collection", "err", err)
	}

	pending := map[key]bool{}
	wake := map[key]time.Time{} // deployments to look at again later
	for {
		var timer <-chan time.Time
		if len(pending) == 0 {
			if next, ok := earliest(wake); ok {
				timer = c.clock.After(max(next.Sub(c.clock.Now()), 0))
			}
		} else {
			// Something is pending: take whatever else is ready first,
			// then sync, so a burst of events is one sync.
			ready := make(chan time.Time)
			close(ready)
			timer = ready
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-dw.ResultChan():
			if !ok {
				return errors.New("deployment watch closed")
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("deployment watch: %v", ev.Object)
			}
			if d, ok := ev.Object.(*appsv1.Deployment); ok {
				pending[key{d.Namespace, d.Name}] = true
			}
			continue
		case ev, ok := <-pw.ResultChan():
			if !ok {
				return errors.New("pod watch closed")
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("pod watch: %v", ev.Object)
			}
			if p, ok := ev.Object.(*corev1.Pod); ok {
				if ref := controllerOf(p); ref != nil {
					pending[key{p.Namespace, ref.Name}] = true
				}
			}
			continue
		case <-timer:
		}
		now := c.clock.Now()
		for k, t := range wake {
			if !t.After(now) {
				pending[k] = true
				delete(wake, k)
			}
		}
		for k := range pending {
			delete(pending, k)
			after, err := c.Sync(ctx, k.ns, k.name)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.log.Warn("sync deployment", "deployment", k.ns+"/"+k.name, "err", err)
				after = retryAfter
			}
			if after > 0 {
				wake[k] = now.Add(after)
			} else {
				delete(wake, k)
			}
		}
	}
}

func earliest(m map[key]time.Time) (time.Time, bool) {
	var (
		t  time.Time
		ok bool
	)
	for _, v := range m {
		if !ok || v.Before(t) {
			t, ok = v, true
		}
	}
	return t, ok
}

// controllerOf returns the pod's controlling owner when it is a Deployment.
func controllerOf(p *corev1.Pod) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(p)
	if ref == nil || ref.Kind != "Deployment" || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
		return nil
	}
	return ref
}

// Sync reconciles one Deployment: its pods, then its status. A Deployment
// that does not exist has its pods deleted. The duration, when not zero,
// is when the Deployment wants looking at again even if nothing changes
// (minReadySeconds passing, the progress deadline).
func (c *Controller) Sync(ctx context.Context, ns, name string) (time.Duration, error) {
	o, err := c.store.Get(ctx, "deployments", ns, name)
	if apierrors.IsNotFound(err) {
		return 0, c.collectGarbage(ctx, ns)
	}
	if err != nil {
		return 0, fmt.Errorf("get deployment %s/%s: %w", ns, name, err)
	}
	d := o.(*appsv1.Deployment)
	if d.DeletionTimestamp != nil {
		return 0, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		return 0, fmt.Errorf("deployment %s/%s: invalid selector: %v", ns, name, err)
	}
	s := &syncer{c: c, d: d, now: c.clock.Now(), hash: objects.PodTemplateHash(&d.Spec.Template, d.Status.CollisionCount)}
	if err := s.classify(ctx, sel); err != nil {
		return 0, err
	}
	created, err := s.reconcile(ctx)
	if err != nil {
		return 0, err
	}
	return s.writeStatus(ctx, created)
}

// syncer holds one sync's view of a Deployment's pods.
type syncer struct {
	c    *Controller
	d    *appsv1.Deployment
	now  time.Time
	hash string

	cur, old    []*corev1.Pod // active pods of the current / other templates
	terminating int           // pods being deleted that have not finished
	oldGoing    int           // of those, pods of other templates
}

func (s *syncer) classify(ctx context.Context, sel labels.Selector) error {
	items, _, err := s.c.store.List(ctx, "pods", s.d.Namespace, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods of deployment %s/%s: %w", s.d.Namespace, s.d.Name, err)
	}
	for _, o := range items {
		p := o.(*corev1.Pod)
		ref := controllerOf(p)
		if ref == nil || ref.Name != s.d.Name {
			continue
		}
		if ref.UID != s.d.UID {
			// Left by an earlier Deployment of the same name.
			if err := s.c.collect(ctx, p, ref); err != nil {
				return err
			}
			continue
		}
		if !sel.Matches(labels.Set(p.Labels)) {
			// Relabelled out of the selector: let it go, as a
			// ReplicaSet releases such a pod.
			if err := s.c.release(ctx, p, s.d.UID); err != nil {
				return err
			}
			continue
		}
		terminal := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		switch {
		case p.DeletionTimestamp != nil:
			if !terminal {
				s.terminating++
				if p.Labels[objects.PodTemplateHashLabel] != s.hash {
					s.oldGoing++
				}
			}
		case terminal:
			// Not counted, as a ReplicaSet does not count it: a
			// replacement is made.
		case p.Labels[objects.PodTemplateHashLabel] == s.hash:
			s.cur = append(s.cur, p)
		default:
			s.old = append(s.old, p)
		}
	}
	return nil
}

// reconcile creates and deletes pods; created reports whether this sync
// started the pods of a new template.
func (s *syncer) reconcile(ctx context.Context) (created bool, err error) {
	replicas := int(*s.d.Spec.Replicas)
	firstOfTemplate := len(s.cur) == 0
	scaleCur := func(n int) error {
		if len(s.cur) < n && firstOfTemplate {
			created = true
		}
		return s.scaleCurrent(ctx, n)
	}
	if s.d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		// Every old pod goes, and is gone, before a new one starts.
		if len(s.old) > 0 {
			return false, s.deletePods(ctx, &s.old, len(s.old))
		}
		if s.oldGoing > 0 {
			return false, nil
		}
		return created, scaleCur(replicas)
	}
	if len(s.old) == 0 {
		return created, scaleCur(replicas)
	}
	surge, unavailable := resolveFenceposts(s.d)
	// Scale up the new pods within replicas+maxSurge...
	if len(s.cur) > replicas {
		if err := s.deletePods(ctx, &s.cur, len(s.cur)-replicas); err != nil {
			return false, err
		}
	}
	if total := len(s.cur) + len(s.old); total < replicas+surge {
		if err := scaleCur(len(s.cur) + min(replicas+surge-total, replicas-len(s.cur))); err != nil {
			return created, err
		}
	}
	// ...and scale down the old ones while enough stay available.
	minAvailable := replicas - unavailable
	newUnavailable := len(s.cur) - s.count(s.cur, s.available)
	maxScaledDown := len(s.cur) + len(s.old) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return created, nil
	}
	// Old pods that are not available first: removing them costs nothing.
	sortForDeletion(s.old, s.available)
	unhealthy := min(s.count(s.old, func(p *corev1.Pod) bool { return !s.available(p) }), maxScaledDown)
	if err := s.deletePods(ctx, &s.old, unhealthy); err != nil {
		return created, err
	}
	avail := s.count(s.cur, s.available) + s.count(s.old, s.available)
	if down := min(avail-minAvailable, len(s.old)); down > 0 {
		if err := s.deletePods(ctx, &s.old, down); err != nil {
			return created, err
		}
	}
	return created, nil
}

// resolveFenceposts turns maxSurge and maxUnavailable into pod counts as
// Kubernetes does: surge rounded up, unavailable rounded down, and
// unavailable 1 when both are 0 so a rollout can progress.
func resolveFenceposts(d *appsv1.Deployment) (surge, unavailable int) {
	ru := d.Spec.Strategy.RollingUpdate
	replicas := int(*d.Spec.Replicas)
	zero := intstr.FromInt32(0)
	ms, mu := &zero, &zero
	if ru != nil {
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
	}
	surge, err := intstr.GetScaledValueFromIntOrPercent(ms, replicas, true)
	if err != nil {
		surge = 0
	}
	unavailable, err = intstr.GetScaledValueFromIntOrPercent(mu, replicas, false)
	if err != nil {
		unavailable = 0
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// maxUnavailable is the Available condition's allowance (0 for Recreate).
func maxUnavailable(d *appsv1.Deployment) int {
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || *d.Spec.Replicas == 0 {
		return 0
	}
	_, u := resolveFenceposts(d)
	return min(u, int(*d.Spec.Replicas))
}

func (s *syncer) count(pods []*corev1.Pod, f func(*corev1.Pod) bool) int {
	n := 0
	for _, p := range pods {
		if f(p) {
			n++
		}
	}
	return n
}

func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; c.Type == corev1.PodReady {
			return c
		}
	}
	return nil
}

func ready(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// available: Ready for at least minReadySeconds.
func (s *syncer) available(p *corev1.Pod) bool {
	c := readyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false
	}
	mrs := time.Duration(s.d.Spec.MinReadySeconds) * time.Second
	return mrs == 0 || !c.LastTransitionTime.Add(mrs).After(s.now)
}

// scaleCurrent brings the current template's pods to n.
func (s *syncer) scaleCurrent(ctx context.Context, n int) error {
	if len(s.cur) > n {
		sortForDeletion(s.cur, s.available)
		return s.deletePods(ctx, &s.cur, len(s.cur)-n)
	}
	if len(s.cur) < n {
		from := len(s.cur)
		// Pods replacing lost ones at an unchanged count are no scaling:
		// Kubernetes' ReplicaSet reports each created pod instead.
		replacing := int(s.d.Status.UpdatedReplicas) >= n && s.d.Status.ObservedGeneration == s.d.Generation
		for len(s.cur) < n {
			p, err := s.c.createPod(ctx, s.d, s.hash)
			if err != nil {
				return err
			}
			s.cur = append(s.cur, p)
			if replacing {
				s.c.event(ctx, s.d, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: "+p.Name)
			}
		}
		if !replacing {
			s.c.event(ctx, s.d, corev1.EventTypeNormal, "ScalingReplicaSet",
				fmt.Sprintf("Scaled up replica set %s from %d to %d", s.groupName(), from, n))
		}
	}
	return nil
}

// groupName is what Kubernetes would name the ReplicaSet of the current
// template.
func (s *syncer) groupName() string { return s.d.Name + "-" + s.hash }

// deletePods deletes the first n of *pods (sorted by the caller) and drops
// them from the slice.
func (s *syncer) deletePods(ctx context.Context, pods *[]*corev1.Pod, n int) error {
	if n <= 0 {
		return nil
	}
	victims := (*pods)[:n]
	for _, p := range victims {
		uid := p.UID
		_, _, err := s.c.store.Delete(ctx, "pods", p.Namespace, p.Name, store.DeleteOptions{Preconditions: metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete pod %s/%s of deployment %s: %w", p.Namespace, p.Name, s.d.Name, err)
		}
	}
	byHash := map[string]int{}
	for _, p := range victims {
		byHash[p.Labels[objects.PodTemplateHashLabel]]++
	}
	*pods = append([]*corev1.Pod(nil), (*pods)[n:]...)
	for h, k := range byHash {
		left := 0
		for _, p := range append(append([]*corev1.Pod(nil), s.cur...), s.old...) {
			if p.Labels[objects.PodTemplateHashLabel] == h {
				left++
			}
		}
		s.c.event(ctx, s.d, corev1.EventTypeNormal, "ScalingReplicaSet",
			fmt.Sprintf("Scaled down replica set %s-%s from %d to %d", s.d.Name, h, left+k, left))
	}
	return nil
}

// sortForDeletion orders pods the way a ReplicaSet picks pods to delete:
// not available before available, pending before running, more restarts
// first, then the newest first.
func sortForDeletion(pods []*corev1.Pod, available func(*corev1.Pod) bool) {
	rank := func(p *corev1.Pod) int {
		switch {
		case p.Status.Phase == corev1.PodPending:
			return 0
		case !ready(p):
			return 1
		case !available(p):
			return 2
		}
		return 3
	}
	restarts := func(p *corev1.Pod) int32 {
		var n int32
		for _, c := range p.Status.ContainerStatuses {
			n += c.RestartCount
		}
		return n
	}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if ra, rb := restarts(a), restarts(b); ra != rb {
			return ra > rb
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.Name > b.Name
	})
}

// maxGeneratedNameLength leaves room for the 5 random characters in a
// 63-character name, as the API server's name generator does.
const maxGeneratedNameLength = 63 - 5

// NewPod returns the pod a Deployment's template makes, named and labelled
// as Kubernetes names and labels it: <deployment>-<hash>-<5 random>, the
// template's labels plus pod-template-hash, owned by the Deployment.
func NewPod(d *appsv1.Deployment, hash string) *corev1.Pod {
	t := d.Spec.Template.DeepCopy()
	lbl := map[string]string{}
	for k, v := range t.Labels {
		lbl[k] = v
	}
	lbl[objects.PodTemplateHashLabel] = hash
	base := d.Name + "-" + hash + "-"
	if len(base) > maxGeneratedNameLength {
		base = base[:maxGeneratedNameLength]
	}
	yes := true
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        base + rand.String(5),
			Namespace:   d.Namespace,
			Labels:      lbl,
			Annotations: t.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment",
				Name: d.Name, UID: d.UID, Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: t.Spec,
	}
	objects.SetDefaults(p)
	return p
}

func (c *Controller) createPod(ctx context.Context, d *appsv1.Deployment, hash string) (*corev1.Pod, error) {
	for attempt := 0; ; attempt++ {
		p := NewPod(d, hash)
		o, err := c.store.Create(ctx, p)
		if apierrors.IsAlreadyExists(err) && attempt < 5 {
			continue // the random suffix was taken
		}
		if err != nil {
			return nil, fmt.Errorf("create pod for deployment %s/%s: %w", d.Namespace, d.Name, err)
		}
		return o.(*corev1.Pod), nil
	}
}

// release removes the Deployment's ownerReference from a pod that no
// longer matches its selector.
func (c *Controller) release(ctx context.Context, p *corev1.Pod, owner types.UID) error {
	_, err := c.store.GuaranteedUpdate(ctx, "pods", p.Namespace, p.Name, func(cur objects.Object) (objects.Object, error) {
		var refs []metav1.OwnerReference
		for _, r := range cur.GetOwnerReferences() {
			if r.UID != owner {
				refs = append(refs, r)
			}
		}
		cur.SetOwnerReferences(refs)
		return cur, nil
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// collectGarbage deletes the pods in ns ("" for all) whose controlling
// Deployment is gone, as Kubernetes' garbage collector does with
// background propagation.
func (c *Controller) collectGarbage(ctx context.Context, ns string) error {
	pods, _, err := c.store.List(ctx, "pods", ns, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("garbage collection: list pods: %w", err)
	}
	var errs []error
	for _, o := range pods {
		p := o.(*corev1.Pod)
		ref := controllerOf(p)
		if ref == nil || p.DeletionTimestamp != nil {
			continue
		}
		owner, err := c.store.Get(ctx, "deployments", p.Namespace, ref.Name)
		if err == nil && owner.GetUID() == ref.UID {
			continue
		}
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		if err := c.collect(ctx, p, ref); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// collect deletes a pod whose owning Deployment is gone.
func (c *Controller) collect(ctx context.Context, p *corev1.Pod, ref *metav1.OwnerReference) error {
	if p.DeletionTimestamp != nil {
		return nil
	}
	uid := p.UID
	_, _, err := c.store.Delete(ctx, "pods", p.Namespace, p.Name, store.DeleteOptions{Preconditions: metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("garbage collection: delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	c.log.Info("deleted pod of a deleted deployment", "pod", p.Namespace+"/"+p.Name, "deployment", ref.Name, "uid", ref.UID)
	return nil
}

// writeStatus computes the Deployment's status from the pods as they are
// after this sync and stores it when it changed.
func (s *syncer) writeStatus(ctx context.Context, created bool) (time.Duration, error) {
	d := s.d
	replicas := *d.Spec.Replicas
	all := append(append([]*corev1.Pod(nil), s.cur...), s.old...)
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           int32(len(all)),
		UpdatedReplicas:    int32(len(s.cur)),
		ReadyReplicas:      int32(s.count(all, ready)),
		AvailableReplicas:  int32(s.count(all, s.available)),
		CollisionCount:     d.Status.CollisionCount,
		Conditions:         append([]appsv1.DeploymentCondition(nil), d.Status.Conditions...),
	}
	terminating := int32(s.terminating)
	st.TerminatingReplicas = &terminating
	st.UnavailableReplicas = max(replicas-st.AvailableReplicas, 0)

	now := metav1.NewTime(s.now.Truncate(time.Second))
	cond := func(typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: msg, LastUpdateTime: now, LastTransitionTime: now}
	}
	if int(st.AvailableReplicas) >= int(replicas)-maxUnavailable(d) {
		setCondition(&st, cond(appsv1.DeploymentAvailable, corev1.ConditionTrue, ReasonMinimumReplicasAvailable, "Deployment has minimum availability."))
	} else {
		setCondition(&st, cond(appsv1.DeploymentAvailable, corev1.ConditionFalse, ReasonMinimumReplicasUnavailable, "Deployment does not have minimum availability."))
	}

	var after time.Duration
	if deadline := d.Spec.ProgressDeadlineSeconds; deadline != nil && *deadline != math.MaxInt32 {
		group := s.groupName()
		switch cur := getCondition(st, appsv1.DeploymentProgressing); {
		case created:
			// Replaced even when the reason is the same: the message
			// names the new group and the deadline starts again.
			c := cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetCreated, fmt.Sprintf("Created new replica set %q", group))
			if cur != nil && cur.Status == corev1.ConditionTrue {
				c.LastTransitionTime = cur.LastTransitionTime
			}
			removeCondition(&st, appsv1.DeploymentProgressing)
			st.Conditions = append(st.Conditions, c)
		case cur == nil && len(s.cur) > 0:
			setCondition(&st, cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewReplicaSet, fmt.Sprintf("Found new replica set %q", group)))
		}
		cur := getCondition(st, appsv1.DeploymentProgressing)
		complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == ReasonNewReplicaSetAvailable
		// Pods just created are progress the next sync judges, as
		// Kubernetes sees a new ReplicaSet's pods one sync later.
		if !complete && !created {
			switch {
			case deploymentComplete(d, &st):
				setCondition(&st, cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewReplicaSetAvailable, fmt.Sprintf("ReplicaSet %q has successfully progressed.", group)))
			case progressing(d, &st):
				c := cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonReplicaSetUpdated, fmt.Sprintf("ReplicaSet %q is progressing.", group))
				if cur != nil && cur.Status == corev1.ConditionTrue {
					c.LastTransitionTime = cur.LastTransitionTime
				}
				removeCondition(&st, appsv1.DeploymentProgressing)
				st.Conditions = append(st.Conditions, c)
			case cur != nil && cur.Reason != ReasonProgressDeadlineExceeded && cur.Reason != ReasonNewReplicaSetAvailable:
				due := cur.LastUpdateTime.Add(time.Duration(*deadline) * time.Second)
				if due.Before(s.now) {
					setCondition(&st, cond(appsv1.DeploymentProgressing, corev1.ConditionFalse, ReasonProgressDeadlineExceeded, fmt.Sprintf("ReplicaSet %q has timed out progressing.", group)))
				} else {
					after = due.Sub(s.now) + time.Second
				}
			}
		}
	}
	// A pod becoming available after minReadySeconds changes nothing in
	// the store: look again then.
	if mrs := time.Duration(d.Spec.MinReadySeconds) * time.Second; mrs > 0 {
		for _, p := range all {
			if c := readyCondition(p); c != nil && c.Status == corev1.ConditionTrue && !s.available(p) {
				if w := c.LastTransitionTime.Add(mrs).Sub(s.now) + 100*time.Millisecond; after == 0 || w < after {
					after = w
				}
			}
		}
	}

	_, err := s.c.store.GuaranteedUpdate(ctx, "deployments", d.Namespace, d.Name, func(cur objects.Object) (objects.Object, error) {
		if cur.GetUID() != d.UID {
			return nil, apierrors.NewConflict(schemaDeployments, d.Name, errors.New("the deployment was replaced"))
		}
		cd := cur.(*appsv1.Deployment)
		cd.Status = st
		return cd, nil
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return 0, fmt.Errorf("update status of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return after, nil
}

var schemaDeployments = appsv1.Resource("deployments")

// deploymentComplete: every replica is updated and available and the
// latest spec was observed.
func deploymentComplete(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	r := *d.Spec.Replicas
	return st.UpdatedReplicas == r && st.Replicas == r && st.AvailableReplicas == r && st.ObservedGeneration >= d.Generation
}

// progressing: the new status shows progress over the stored one.
func progressing(d *appsv1.Deployment, st *appsv1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

func getCondition(st appsv1.DeploymentStatus, typ appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// setCondition sets a condition as Kubernetes does: the same status and
// reason change nothing (the times stay), the same status keeps the
// transition time.
func setCondition(st *appsv1.DeploymentStatus, c appsv1.DeploymentCondition) {
	cur := getCondition(*st, c.Type)
	if cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	if cur != nil && cur.Status == c.Status {
		c.LastTransitionTime = cur.LastTransitionTime
	}
	removeCondition(st, c.Type)
	st.Conditions = append(st.Conditions, c)
}

func removeCondition(st *appsv1.DeploymentStatus, typ appsv1.DeploymentConditionType) {
	var out []appsv1.DeploymentCondition
	for _, c := range st.Conditions {
		if c.Type != typ {
			out = append(out, c)
		}
	}
	st.Conditions = out
}

// event records an Event about the Deployment; failures are only logged.
func (c *Controller) event(ctx context.Context, d *appsv1.Deployment, typ, reason, msg string) {
	now := metav1.NewTime(c.clock.Now())
	e := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x%s", d.Name, now.UnixNano(), rand.String(4)), Namespace: d.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Deployment", APIVersion: appsv1.SchemeGroupVersion.String(),
			Namespace: d.Namespace, Name: d.Name, UID: d.UID, ResourceVersion: d.ResourceVersion,
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: Component},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: Component,
	}
	if _, err := c.store.Create(ctx, e); err != nil {
		c.log.Debug("event not recorded", "deployment", d.Namespace+"/"+d.Name, "reason", reason, "err", err)
	}
	c.log.Info(msg, "deployment", d.Namespace+"/"+d.Name, "reason", reason)
}
