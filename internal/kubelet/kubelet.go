package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"

	"github.com/peapod/peapod/internal/cgroup"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/kubelet/backoff"
	"github.com/peapod/peapod/internal/kubelet/images"
	"github.com/peapod/peapod/internal/kubelet/volumes"
	"github.com/peapod/peapod/internal/store"
)

// Defaults for Options.
const (
	// DefaultResync is how often a pod worker looks at its pod without
	// being woken (kubelet's PLEG relists every second).
	DefaultResync = time.Second
	// DefaultStatusResync bounds how stale a pod's status can be.
	DefaultStatusResync = 10 * time.Second
)

// Options configure a Kubelet. Zero values are kubelet's defaults.
type Options struct {
	// Root is peapod's root; the kubelet uses ROOT/pods.
	Root string
	// NodeName is the node's name in events and spec.nodeName
	// (default: the host name).
	NodeName string
	// HostIP is the node address pods see as status.hostIP (default:
	// the address of the default route's interface, else 127.0.0.1).
	HostIP string

	// CgroupRoot is the cgroupfs path under which the pod cgroups are made
	// (ROOT/kubepods[/burstable|/besteffort]/pod<UID>, kubelet's
	// cgroupsPerQOS layout; default DefaultCgroupRoot).
	CgroupRoot string
	// PodCgroups makes and removes the pod cgroups (default: the host's
	// cgroup hierarchies; tests give a fake).
	PodCgroups PodCgroups

	Runtime Runtime
	Store   Store
	Images  images.Service
	// NodeKeyring returns the node-level registry credentials (the auth
	// files of peapod.toml), read at every pull.
	NodeKeyring func() *keyring.Keyring

	// ImagePullCredentialsVerificationPolicy and
	// PreloadedImagesVerificationAllowlist are kubelet's settings of the
	// same names (KEP-2535).
	ImagePullCredentialsVerificationPolicy string
	PreloadedImagesVerificationAllowlist   []string

	// Back-offs: zero means kubelet's 10s doubling to 300s for both.
	// Only tests shorten them (see the daemon's test setting).
	ImagePullBackOffInitial, ImagePullBackOffMax time.Duration
	CrashLoopBackOffInitial, CrashLoopBackOffMax time.Duration

	// ContainerLogMaxSize and ContainerLogMaxFiles are kubelet's
	// containerLogMaxSize (bytes) and containerLogMaxFiles: a running
	// container's log is rotated when it grows beyond the size, and at
	// most that many files (the current one included) are kept. Checked
	// every LogRotateInterval.
	ContainerLogMaxSize  int64
	ContainerLogMaxFiles int
	LogRotateInterval    time.Duration

	// Image garbage collection (kubelet's imageGCHighThresholdPercent,
	// imageGCLowThresholdPercent, imageMinimumGCAge), every ImageGCPeriod.
	// ImageStore is where images are listed and removed (default: Images,
	// when it can); ImageFsUsage reports the image filesystem's usage
	// (default: statfs of Root). Images used by a container of any owner
	// in ImageUsers (besides the kubelet's own Runtime) or named in
	// PinnedImages are never removed.
	ImageGCHighThresholdPercent int
	ImageGCLowThresholdPercent  int
	ImageMinimumGCAge           time.Duration
	ImageGCPeriod               time.Duration
	ImageStore                  ImageStore
	ImageFsUsage                func() (used, capacity uint64, err error)
	ImageUsers                  []ContainerLister
	PinnedImages                []string

	// ContainerGCPeriod is how often pods that are gone leave nothing
	// behind (sandboxes, volumes, log directories).
	ContainerGCPeriod time.Duration

	// Resync is how often each worker re-examines its pod.
	Resync time.Duration
	Clock  clock.Clock
	Logger *slog.Logger
}

// Kubelet runs the store's pods. Create with New, start with Run.
type Kubelet struct {
	opts    Options
	rt      Runtime
	store   Store
	objects objectReader
	images  *images.Manager
	volumes *volumes.Manager
	events  *recorder
	clock   clock.Clock
	log     *slog.Logger
	crash   *backoff.Backoff
	probes  *prober
	imageGC *imageGC
	podsDir string
	hostIP  string
	node    string

	memoryCapacity int64
	cgroups        PodCgroups // nil: no pod cgroups (none mounted)

	mu      sync.Mutex
	workers map[types.UID]*worker
	wg      sync.WaitGroup
}

// New checks the options and returns a Kubelet that is not running yet.
func New(opts Options) (*Kubelet, error) {
	if opts.Root == "" || opts.Runtime == nil || opts.Store == nil || opts.Images == nil {
		return nil, errors.New("kubelet: root, runtime, store and image service are required")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.NodeName == "" {
		opts.NodeName, _ = os.Hostname()
	}
	if opts.HostIP == "" {
		opts.HostIP = defaultHostIP()
	}
	if opts.CrashLoopBackOffInitial <= 0 {
		opts.CrashLoopBackOffInitial = backoff.CrashLoopInitial
	}
	if opts.CrashLoopBackOffMax <= 0 {
		opts.CrashLoopBackOffMax = backoff.CrashLoopMax
	}
	if err := housekeepingDefaults(&opts); err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	k := &Kubelet{
		opts:           opts,
		rt:             opts.Runtime,
		store:          opts.Store,
		objects:        objectReader{opts.Store},
		clock:          opts.Clock,
		log:            opts.Logger.With("component", "kubelet"),
		podsDir:        filepath.Join(opts.Root, "pods"),
		hostIP:         opts.HostIP,
		node:           opts.NodeName,
		memoryCapacity: memoryCapacity(),
		workers:        map[types.UID]*worker{},
	}
	k.probes = newProber(k)
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = DefaultCgroupRoot
		k.opts.CgroupRoot = DefaultCgroupRoot
	}
	k.cgroups = opts.PodCgroups
	if k.cgroups == nil {
		m, err := cgroup.New()
		if err != nil {
			k.log.Warn("pods run without pod cgroups", "err", err)
		} else {
			k.cgroups = m
		}
	}
	if store := opts.ImageStore; store != nil {
		k.imageGC = &imageGC{k: k, images: store, users: append([]ContainerLister{opts.Runtime}, opts.ImageUsers...),
			usage: opts.ImageFsUsage, pinned: opts.PinnedImages, lastUsed: map[string]time.Time{}}
	}
	k.crash = backoff.New(opts.CrashLoopBackOffInitial, opts.CrashLoopBackOffMax, opts.Clock)
	k.events = newRecorder(opts.Store, opts.Clock, opts.NodeName, k.log)
	im, err := images.New(images.Options{
		Images:         opts.Images,
		NodeKeyring:    opts.NodeKeyring,
		Recorder:       k.events,
		Policy:         images.VerificationPolicy(opts.ImagePullCredentialsVerificationPolicy),
		Allowlist:      opts.PreloadedImagesVerificationAllowlist,
		InitialBackOff: opts.ImagePullBackOffInitial,
		MaxBackOff:     opts.ImagePullBackOffMax,
		Clock:          opts.Clock,
		Logger:         k.log,
	})
	if err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	k.images = im
	k.volumes = &volumes.Manager{Root: k.podsDir, Objects: k.objects}
	if err := os.MkdirAll(k.podsDir, 0o750); err != nil {
		return nil, fmt.Errorf("kubelet: %w", err)
	}
	return k, nil
}

// defaultHostIP is the source address towards a public address (no packet
// is sent), else loopback.
func defaultHostIP() string {
	c, err := net.Dial("udp", "192.0.2.1:9")
	if err != nil {
		return "127.0.0.1"
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP.String()
}

// Run starts a worker for every pod in the store and follows the store
// until ctx ends. Pods keep running when it returns: a daemon that stops
// does not stop its pods (the next Run adopts them).
func (k *Kubelet) Run(ctx context.Context) error {
	defer k.wg.Wait()
	k.startHousekeeping(ctx)
	for {
		err := k.listAndWatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		k.log.Warn("pod watch ended, listing again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-k.clock.After(time.Second):
		}
	}
}

func (k *Kubelet) listAndWatch(ctx context.Context) error {
	list, rv, err := k.store.List(ctx, "pods", "", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list pods: %w", err)
	}
	live := map[types.UID]bool{}
	for _, o := range list {
		p := o.(*corev1.Pod)
		live[p.UID] = true
		k.dispatch(ctx, p, false)
	}
	// Workers of pods that went while we were not watching.
	k.mu.Lock()
	for uid, w := range k.workers {
		if !live[uid] {
			w.update(nil, true)
		}
	}
	k.mu.Unlock()
	k.removeOrphans(ctx, live)

	w, err := k.store.Watch(ctx, "pods", "", store.ListOptions{ResourceVersion: rv})
	if err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return errors.New("watch closed")
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				k.dispatch(ctx, ev.Object.(*corev1.Pod), false)
			case watch.Deleted:
				k.dispatch(ctx, ev.Object.(*corev1.Pod), true)
			case watch.Error:
				return fmt.Errorf("watch pods: %v", apierrors.FromObject(ev.Object))
			}
		}
	}
}

// dispatch hands a pod's new state to its worker, starting one if needed.
func (k *Kubelet) dispatch(ctx context.Context, pod *corev1.Pod, deleted bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w, ok := k.workers[pod.UID]
	if !ok {
		w = newWorker(k, pod)
		k.workers[pod.UID] = w
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run(ctx)
			k.mu.Lock()
			if k.workers[pod.UID] == w {
				delete(k.workers, pod.UID)
			}
			k.mu.Unlock()
		}()
	}
	w.update(pod, deleted)
}

// wakePod makes a pod's worker sync now (a probe result changed).
func (k *Kubelet) wakePod(uid types.UID) {
	k.mu.Lock()
	w := k.workers[uid]
	k.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// removeOrphans stops and removes kubelet sandboxes whose pod is not in the
// store (deleted while the daemon was down), after their grace period.
func (k *Kubelet) removeOrphans(ctx context.Context, live map[types.UID]bool) {
	resp, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		k.log.Warn("list sandboxes", "err", err)
		return
	}
	for _, sb := range resp.GetItems() {
		uid := types.UID(sb.GetMetadata().GetUid())
		if live[uid] {
			continue
		}
		k.mu.Lock()
		_, hasWorker := k.workers[uid]
		k.mu.Unlock()
		if hasWorker {
			continue
		}
		k.log.Info("removing the sandbox of a pod that no longer exists", "pod", sb.GetMetadata().GetNamespace()+"/"+sb.GetMetadata().GetName(), "sandbox", sb.GetId())
		pod := &corev1.Pod{}
		pod.Name, pod.Namespace, pod.UID = sb.GetMetadata().GetName(), sb.GetMetadata().GetNamespace(), uid
		k.dispatch(ctx, pod, true)
	}
}

// objectReader reads Secrets and ConfigMaps from the store.
type objectReader struct{ s Store }

func (o objectReader) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	obj, err := o.s.Get(ctx, "secrets", ns, name)
	if apierrors.IsNotFound(err) {
		// kubelet's wording: `secret "x" not found`
		return nil, apierrors.NewNotFound(corev1.Resource("secret"), name)
	}
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Secret), nil
}

func (o objectReader) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	obj, err := o.s.Get(ctx, "configmaps", ns, name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("configmap"), name)
	}
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.ConfigMap), nil
}
