package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/rootfs"
	"github.com/peapod/peapod/internal/container/spec"
	"github.com/peapod/peapod/internal/sandbox/cni"
	"github.com/peapod/peapod/internal/sandbox/dns"
	"github.com/peapod/peapod/internal/sandbox/netns"
)

// ErrInvalidArgument: the request lacks a required field.
var ErrInvalidArgument = errors.New("invalid argument")

// pauseStopGrace is how long catatonit gets to exit on SIGTERM (it exits at
// once) before the pause container is killed.
const pauseStopGrace = 2 * time.Second

func hostNetwork(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

func hostIPC(cfg *runtimeapi.PodSandboxConfig) bool {
	return cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE
}

func podName(cfg *runtimeapi.PodSandboxConfig) string {
	m := cfg.GetMetadata()
	return m.GetNamespace() + "/" + m.GetName()
}

// RunPodSandbox creates and starts a pod sandbox: network namespace and pod
// network, DNS files, /dev/shm, and the running pause container. On failure
// nothing of it is left.
func (v *View) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	if cfg.GetMetadata().GetName() == "" {
		return nil, fmt.Errorf("run pod sandbox: metadata.name is required: %w", ErrInvalidArgument)
	}
	if h := req.GetRuntimeHandler(); h != "" && h != "runc" {
		return nil, fmt.Errorf("run pod sandbox %s: runtime handler %q: only runc is available: %w", podName(cfg), h, ErrNotFound)
	}
	r := v.r
	if err := r.sandboxNameFree(v.owner, cfg.GetMetadata()); err != nil {
		return nil, err
	}
	cfgBytes, err := marshalProto(cfg)
	if err != nil {
		return nil, fmt.Errorf("run pod sandbox %s: %w", podName(cfg), err)
	}
	id := newID()
	sb := &sandbox{owner: v.owner, id: id, config: cfg, rec: sandboxRecord{
		ID: id, Owner: v.owner, Config: cfgBytes,
		Dir:       filepath.Join(r.dirs.sandboxes, id),
		CreatedAt: time.Now().UnixNano(),
	}}
	start := time.Now()
	if err := r.startSandbox(ctx, sb); err != nil {
		if cerr := r.cleanupSandbox(context.WithoutCancel(ctx), &sb.rec); cerr != nil {
			r.log.Warn("clean up failed sandbox", "sandbox", id, "pod", podName(cfg), "err", cerr)
		} else if derr := r.del(bucketSandboxes, id); derr != nil {
			r.log.Warn("clean up failed sandbox", "sandbox", id, "err", derr)
		}
		return nil, fmt.Errorf("run pod sandbox %s: %w", podName(cfg), err)
	}
	r.mu.Lock()
	r.sandboxes[id] = sb
	r.mu.Unlock()
	r.log.Info("sandbox started", "sandbox", id, "pod", podName(cfg), "ip", strings.Join(sb.rec.IPs, ","), "duration", time.Since(start))
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// sandboxNameFree refuses a second sandbox with the same metadata (name,
// namespace, uid, attempt), as containerd reserves the name.
func (r *Runtime) sandboxNameFree(owner string, m *runtimeapi.PodSandboxMetadata) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.sandboxes {
		o := s.config.GetMetadata()
		if s.owner == owner && o.GetName() == m.GetName() && o.GetNamespace() == m.GetNamespace() &&
			o.GetUid() == m.GetUid() && o.GetAttempt() == m.GetAttempt() {
			return fmt.Errorf("run pod sandbox %s/%s attempt %d: sandbox %s has that name: %w", m.GetNamespace(), m.GetName(), m.GetAttempt(), s.id, ErrAlreadyExists)
		}
	}
	return nil
}

// startSandbox does the work of RunPodSandbox, recording each resource in
// sb.rec (and in the database) before creating the next, so that
// cleanupSandbox, now or after a crash, knows what to undo.
func (r *Runtime) startSandbox(ctx context.Context, sb *sandbox) error {
	rec, cfg := &sb.rec, sb.config
	if err := r.putSandbox(rec); err != nil {
		return err
	}
	if err := os.MkdirAll(rec.Dir, 0o711); err != nil {
		return err
	}
	pause, err := r.pause(ctx)
	if err != nil {
		return err
	}
	rec.PauseImage = pause.Name

	// The network namespace exists first: the pause container joins it by
	// path. CNI then configures it while the pause container is created,
	// which takes the two slowest steps of a pod start off each other's
	// path (the pause process does not look at the network), unless a
	// sysctl of the pod names an interface CNI has yet to create.
	t0 := time.Now()
	type netResult struct {
		ips []string
		d   time.Duration
		err error
	}
	netDone := make(chan netResult, 1)
	if hostNetwork(cfg) {
		netDone <- netResult{}
	} else {
		ns, err := netns.New(r.dirs.netns)
		if err != nil {
			return err
		}
		rec.NetNS = ns.Path()
		if err := r.putSandbox(rec); err != nil {
			return err
		}
		setup := func() {
			var nr netResult
			res, err := r.net.Setup(ctx, cniPod(rec.ID, ns.Path(), cfg))
			if err == nil {
				for _, ip := range res.IPs {
					nr.ips = append(nr.ips, ip.String())
				}
			}
			nr.err, nr.d = err, time.Since(t0)
			netDone <- nr
		}
		if interfaceSysctls(cfg) {
			setup()
		} else {
			go setup()
		}
	}
	waitNet := func() netResult {
		nr := <-netDone
		netDone <- nr // later waits see the same result
		return nr
	}
	pidFile := filepath.Join(rec.Dir, "pause.pid")
	if err := r.createPause(ctx, rec, cfg, pause, pidFile); err != nil {
		waitNet()
		return err
	}
	tPause := time.Since(t0)
	nr := waitNet()
	if nr.err != nil {
		return nr.err
	}
	rec.IPs = nr.ips
	hostname := cfg.GetHostname()
	if !hostNetwork(cfg) {
		hostname = spec.PodHostname(cfg)
	}
	if _, err := dns.Write(dns.Config{
		Dir: rec.Dir, Hostname: hostname, PodIPs: nr.ips,
		HostNetwork: hostNetwork(cfg), DNS: cfg.GetDnsConfig(),
	}); err != nil {
		return err
	}
	r.log.Debug("sandbox phases", "sandbox", rec.ID, "network", nr.d, "pause", tPause)
	pid, err := readPidFile(pidFile)
	if err != nil {
		return err
	}
	startTicks, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("pause process %d: %w", pid, err)
	}
	rec.PausePID, rec.PauseStart, rec.Ready = pid, startTicks, true
	return r.putSandbox(rec)
}

// createPause mounts the pod's /dev/shm (and a configured pause image) and
// creates and starts the pause container.
func (r *Runtime) createPause(ctx context.Context, rec *sandboxRecord, cfg *runtimeapi.PodSandboxConfig, pause *pauseImage, pidFile string) error {
	if !hostIPC(cfg) {
		shm := filepath.Join(rec.Dir, "shm")
		if err := os.MkdirAll(shm, 0o755); err != nil {
			return err
		}
		rec.Shm = shm
		if err := r.putSandbox(rec); err != nil {
			return err
		}
		if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
			return fmt.Errorf("mount pod /dev/shm: %w", err)
		}
	}
	root := pause.Rootfs
	if root == "" {
		rec.PauseRootfs = filepath.Join(rec.Dir, "rootfs")
		if err := r.putSandbox(rec); err != nil {
			return err
		}
		var err error
		if root, err = mountPause(rec.Dir, pause.Lowers); err != nil {
			return err
		}
	}
	s, err := spec.Sandbox(spec.SandboxParams{
		ID: rec.ID, Config: cfg, Image: pause.Config, ImageName: pause.Name,
		RootfsPath: root, NetNSPath: rec.NetNS, ShmPath: rec.Shm, Host: r.host,
		NativePause: pause.Rootfs != "", // the local catatonit, not a configured image
	})
	if err != nil {
		return err
	}
	if err := writeSpec(rec.Dir, s); err != nil {
		return err
	}
	return r.runPause(ctx, rec.ID, rec.Dir, pidFile)
}

// interfaceSysctls reports whether the pod sets a sysctl of one network
// interface (net.ipv4.conf.eth0.*): it exists only once CNI has run.
func interfaceSysctls(cfg *runtimeapi.PodSandboxConfig) bool {
	for k := range cfg.GetLinux().GetSysctls() {
		k = strings.ReplaceAll(k, "/", ".")
		for _, p := range []string{"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh."} {
			if rest, ok := strings.CutPrefix(k, p); ok {
				dev, _, _ := strings.Cut(rest, ".")
				if dev != "all" && dev != "default" && dev != "lo" {
					return true
				}
			}
		}
	}
	return false
}

func cniPod(id, nsPath string, cfg *runtimeapi.PodSandboxConfig) cni.Pod {
	p := cni.Pod{
		ID: id, Name: cfg.GetMetadata().GetName(), Namespace: cfg.GetMetadata().GetNamespace(),
		UID: cfg.GetMetadata().GetUid(), NetNSPath: nsPath,
	}
	for _, pm := range cfg.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		p.PortMappings = append(p.PortMappings, cni.PortMapping{
			HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(),
			Protocol: pm.GetProtocol().String(), HostIP: pm.GetHostIp(),
		})
	}
	return p
}

func writeSpec(bundle string, s any) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	tmp := filepath.Join(bundle, "config.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(bundle, "config.json")); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q", path, data)
	}
	return pid, nil
}

// stopNetwork detaches the pod from the network and removes the pinned
// namespace. Both are idempotent.
func (r *Runtime) stopNetwork(ctx context.Context, rec *sandboxRecord, cfg *runtimeapi.PodSandboxConfig) error {
	if cfg != nil && hostNetwork(cfg) {
		return nil
	}
	if err := r.net.Teardown(ctx, cniPod(rec.ID, rec.NetNS, cfg)); err != nil {
		return err
	}
	if rec.NetNS != "" {
		if err := netns.RemovePath(rec.NetNS); err != nil {
			return err
		}
		rec.NetNS = ""
	}
	return nil
}

// cleanupSandbox removes everything the sandbox record names: the pause
// container, the pod network and namespace, mounts and the directory.
// It is idempotent and works from the record alone (after a restart).
func (r *Runtime) cleanupSandbox(ctx context.Context, rec *sandboxRecord) error {
	var errs []error
	if err := r.runc.Delete(ctx, rec.ID, true); err != nil {
		errs = append(errs, err)
	}
	cfg := &runtimeapi.PodSandboxConfig{}
	_ = unmarshalProto(rec.Config, cfg)
	if err := r.stopNetwork(ctx, rec, cfg); err != nil {
		errs = append(errs, err)
	}
	for _, m := range []string{rec.PauseRootfs, rec.Shm} {
		if m == "" {
			continue
		}
		if err := rootfs.Unmount(m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.RemoveAll(rec.Dir); err != nil {
		return err
	}
	return nil
}

// StopPodSandbox stops every container of the sandbox and the pause
// container, and releases the pod's network (IP, hostPorts, namespace).
// Stopping a stopped or unknown sandbox is not an error.
func (v *View) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := v.r.lookupSandbox(v.owner, req.GetPodSandboxId())
	if errors.Is(err, ErrNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := v.r.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (r *Runtime) stopSandbox(ctx context.Context, sb *sandbox) error {
	// Not ready first, so that no container is created while the others
	// are being stopped (CreateContainer checks under sb.mu).
	sb.mu.Lock()
	if sb.rec.Ready {
		sb.rec.Ready = false
		if err := r.putSandbox(&sb.rec); err != nil {
			sb.mu.Unlock()
			return fmt.Errorf("stop pod sandbox %s: %w", sb.id, err)
		}
	}
	sb.mu.Unlock()
	for _, c := range r.containersOf(sb.id) {
		if err := r.stopContainer(ctx, c, 0); err != nil {
			return fmt.Errorf("stop pod sandbox %s: %w", sb.id, err)
		}
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.removed {
		return nil
	}
	if err := r.runc.Stop(ctx, sb.id, pauseStopGrace); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", sb.id, err)
	}
	netns := sb.rec.NetNS
	if err := r.stopNetwork(ctx, &sb.rec, sb.config); err != nil {
		return fmt.Errorf("stop pod sandbox %s: %w", sb.id, err)
	}
	if netns != sb.rec.NetNS {
		if err := r.putSandbox(&sb.rec); err != nil {
			return fmt.Errorf("stop pod sandbox %s: %w", sb.id, err)
		}
	}
	return nil
}

// RemovePodSandbox stops the sandbox if needed and removes it with all its
// containers. Removing an unknown sandbox is not an error.
func (v *View) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	r := v.r
	sb, err := r.lookupSandbox(v.owner, req.GetPodSandboxId())
	if errors.Is(err, ErrNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.stopSandbox(ctx, sb); err != nil {
		return nil, err
	}
	for _, c := range r.containersOf(sb.id) {
		if err := r.removeContainer(ctx, c); err != nil {
			return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.id, err)
		}
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.removed {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err := r.cleanupSandbox(ctx, &sb.rec); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.id, err)
	}
	if err := r.del(bucketSandboxes, sb.id); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", sb.id, err)
	}
	sb.removed = true
	r.mu.Lock()
	delete(r.sandboxes, sb.id)
	r.mu.Unlock()
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// ready reports whether the sandbox is READY: started, not stopped, and its
// pause process alive. sb.mu must be held.
func (sb *sandbox) ready() bool {
	return sb.rec.Ready && alive(sb.rec.PausePID, sb.rec.PauseStart)
}

func (sb *sandbox) state() runtimeapi.PodSandboxState {
	if sb.ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// PodSandboxStatus returns the sandbox's state, IPs and namespaces.
func (v *View) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := v.r.lookupSandbox(v.owner, req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod sandbox status: %w", err)
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	cfg, rec := sb.config, &sb.rec
	st := &runtimeapi.PodSandboxStatus{
		Id:          sb.id,
		Metadata:    cfg.GetMetadata(),
		State:       sb.state(),
		CreatedAt:   rec.CreatedAt,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
		RuntimeHandler: "",
	}
	if len(rec.IPs) > 0 {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: rec.IPs[0]}
		for _, ip := range rec.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"pid": rec.PausePID, "netns": rec.NetNS, "image": rec.PauseImage, "dir": rec.Dir, "owner": sb.owner,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListPodSandbox lists this owner's sandboxes, filtered by ID (or ID
// prefix), state and labels.
func (v *View) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	ss, _ := v.r.snapshot(v.owner)
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range ss {
		if f.GetId() != "" && !strings.HasPrefix(sb.id, f.GetId()) {
			continue
		}
		if !labelsMatch(sb.config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		sb.mu.Lock()
		if sb.removed {
			sb.mu.Unlock()
			continue
		}
		state := sb.state()
		created := sb.rec.CreatedAt
		sb.mu.Unlock()
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: sb.id, Metadata: sb.config.GetMetadata(), State: state, CreatedAt: created,
			Labels: sb.config.GetLabels(), Annotations: sb.config.GetAnnotations(),
		})
	}
	return resp, nil
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, want := range selector {
		if got, ok := labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}
