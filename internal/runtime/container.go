package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/conmon"
	"github.com/peapod/peapod/internal/container/rootfs"
	"github.com/peapod/peapod/internal/container/spec"
	"github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/sandbox/dns"
)

// Reasons of an exited container, as kubelet shows them.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// maxExecOutput caps what ExecSync keeps of each stream (kubelet's gRPC
// message limit is 16 MiB).
const maxExecOutput = 16 << 20

func containerName(cfg *runtimeapi.ContainerConfig) string {
	return cfg.GetMetadata().GetName()
}

// CreateContainer creates a container in a ready sandbox: its root
// filesystem (an overlay of the image's layers), its OCI spec joining the
// pod's namespaces, and the container itself under conmon, not yet started.
func (v *View) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	r := v.r
	cfg := req.GetConfig()
	if containerName(cfg) == "" {
		return nil, fmt.Errorf("create container: metadata.name is required: %w", ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("create container %s: image is required: %w", containerName(cfg), ErrInvalidArgument)
	}
	sb, err := r.lookupSandbox(v.owner, req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", containerName(cfg), err)
	}
	// sb.mu is held until the container is in the map, so that a
	// concurrent stop of the sandbox either sees it or refuses it.
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.removed || !sb.ready() {
		return nil, fmt.Errorf("create container %s: sandbox %s is not ready: %w", containerName(cfg), sb.id, ErrNotReady)
	}
	if err := r.containerNameFree(sb.id, cfg.GetMetadata()); err != nil {
		return nil, err
	}
	img, err := r.opts.Images.Status(cfg.GetImage().GetImage())
	if err != nil {
		return nil, fmt.Errorf("create container %s: image %s: %w", containerName(cfg), cfg.GetImage().GetImage(), err)
	}
	cfgBytes, err := marshalProto(cfg)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", containerName(cfg), err)
	}
	id := newID()
	c := &container{owner: v.owner, id: id, sandboxID: sb.id, config: cfg, rec: containerRecord{
		ID: id, SandboxID: sb.id, Owner: v.owner, Config: cfgBytes,
		ImageID: img.ID.String(), ImageName: cfg.GetImage().GetImage(),
		Bundle:    filepath.Join(r.dirs.containers, id),
		State:     int32(runtimeapi.ContainerState_CONTAINER_UNKNOWN),
		CreatedAt: time.Now().UnixNano(),
	}}
	for _, l := range img.Layers {
		c.rec.Layers = append(c.rec.Layers, l.String())
	}
	c.lease = r.leaseLayers(c.rec.Layers)
	if err := r.createContainer(ctx, sb, c, img); err != nil {
		if cerr := r.cleanupContainer(context.WithoutCancel(ctx), c); cerr != nil {
			r.log.Warn("clean up failed container", "container", id, "name", containerName(cfg), "err", cerr)
		}
		return nil, fmt.Errorf("create container %s in sandbox %s: %w", containerName(cfg), sb.id, err)
	}
	r.mu.Lock()
	r.containers[id] = c
	r.mu.Unlock()
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// leaseLayers protects a container's lower dirs from image garbage
// collection, when the image service allows it.
func (r *Runtime) leaseLayers(layers []string) *store.Lease {
	l, ok := r.opts.Images.(leaser)
	if !ok || l.Store() == nil {
		return nil
	}
	lease := l.Store().NewLease()
	for _, d := range layers {
		lease.Add(digest.Digest(d))
	}
	return lease
}

// containerNameFree refuses a second container with the same name and
// attempt in a sandbox.
func (r *Runtime) containerNameFree(sandboxID string, m *runtimeapi.ContainerMetadata) error {
	for _, c := range r.containersOf(sandboxID) {
		o := c.config.GetMetadata()
		if o.GetName() == m.GetName() && o.GetAttempt() == m.GetAttempt() {
			return fmt.Errorf("create container %s attempt %d: container %s has that name: %w", m.GetName(), m.GetAttempt(), c.id, ErrAlreadyExists)
		}
	}
	return nil
}

// createContainer does the work of CreateContainer; sb.mu is held.
func (r *Runtime) createContainer(ctx context.Context, sb *sandbox, c *container, img *store.Image) error {
	rec, cfg := &c.rec, c.config
	if err := r.putContainer(rec); err != nil {
		return err
	}
	lowers, err := r.opts.Images.LayerDirs(img.ID.String())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(rec.Bundle, 0o711); err != nil {
		return err
	}
	root := filepath.Join(rec.Bundle, "rootfs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if err := rootfs.Mount(root, filepath.Join(rec.Bundle, "upper"), filepath.Join(rec.Bundle, "work"), lowers, false); err != nil {
		return err
	}
	pid := sb.rec.PausePID
	ns := spec.SandboxNamespaces{
		Net: sb.rec.NetNS,
		IPC: fmt.Sprintf("/proc/%d/ns/ipc", pid),
		UTS: fmt.Sprintf("/proc/%d/ns/uts", pid),
		PID: fmt.Sprintf("/proc/%d/ns/pid", pid),
	}
	files := spec.SandboxFiles{
		Hosts:      filepath.Join(sb.rec.Dir, dns.HostsFile),
		ResolvConf: filepath.Join(sb.rec.Dir, dns.ResolvConfFile),
		Hostname:   filepath.Join(sb.rec.Dir, dns.HostnameFile),
		Shm:        sb.rec.Shm,
	}
	specCfg, err := r.mountImageVolumes(rec.Bundle, cfg)
	if err != nil {
		return err
	}
	s, err := spec.Container(spec.ContainerParams{
		ID: rec.ID, SandboxID: sb.id, Config: specCfg, SandboxConfig: sb.config,
		Image: img.Config.Config, ImageName: rec.ImageName, RootfsPath: root,
		Namespaces: ns, Files: files, Host: r.host,
	})
	if err != nil {
		return err
	}
	// The pause process must still be the one whose namespaces the spec
	// names, or the container would join a stranger's.
	if !alive(pid, sb.rec.PauseStart) {
		return fmt.Errorf("sandbox %s: pause process %d is gone: %w", sb.id, pid, ErrNotReady)
	}
	if err := writeSpec(rec.Bundle, s); err != nil {
		return err
	}
	rec.LogPath = filepath.Join(rec.Bundle, "container.log")
	if dir := sb.config.GetLogDirectory(); dir != "" && cfg.GetLogPath() != "" {
		rec.LogPath = filepath.Join(dir, cfg.GetLogPath())
	}
	t0 := time.Now()
	h, err := conmon.Create(ctx, conmon.Options{
		ID: rec.ID, Bundle: rec.Bundle,
		Conmon: r.opts.Conmon, RuncBinary: r.runc.Binary(), RuncRoot: r.runc.Root(),
		LogPath: rec.LogPath, ExitDir: r.dirs.exits, SocketDir: r.dirs.sockets,
		Terminal: cfg.GetTty(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
	})
	if err != nil {
		return err
	}
	r.log.Debug("container created", "container", rec.ID, "conmonCreate", time.Since(t0))
	c.handle = h
	rec.PID = h.ContainerPID
	rec.State = int32(runtimeapi.ContainerState_CONTAINER_CREATED)
	return r.putContainer(rec)
}

// cleanupContainer removes everything of a container: the runc container
// and conmon's files, the rootfs mount, the bundle, the lease and the
// record. It is idempotent.
func (r *Runtime) cleanupContainer(ctx context.Context, c *container) error {
	rec := &c.rec
	h := c.handle
	if h == nil {
		// conmon never got to it, or a restart found no state: runc may
		// still know the container.
		if err := r.runc.Delete(ctx, rec.ID, true); err != nil {
			return err
		}
		h = &conmon.Handle{Options: conmon.Options{
			ID: rec.ID, Bundle: rec.Bundle, RuncBinary: r.runc.Binary(), RuncRoot: r.runc.Root(),
			ExitDir: r.dirs.exits, SocketDir: r.dirs.sockets,
		}}
	}
	if err := h.Remove(ctx); err != nil {
		return err
	}
	if err := rootfs.Unmount(filepath.Join(rec.Bundle, "rootfs")); err != nil {
		return err
	}
	if err := unmountImageVolumes(rec.Bundle); err != nil {
		return err
	}
	if err := os.RemoveAll(rec.Bundle); err != nil {
		return err
	}
	if c.lease != nil {
		c.lease.Release()
		c.lease = nil
	}
	return r.del(bucketContainers, rec.ID)
}

// refresh moves a created or running container whose process ended to
// EXITED, from conmon's exit file. c.mu must be held.
func (r *Runtime) refresh(c *container) {
	st := runtimeapi.ContainerState(c.rec.State)
	if c.handle == nil || (st != runtimeapi.ContainerState_CONTAINER_RUNNING && st != runtimeapi.ContainerState_CONTAINER_CREATED) {
		return
	}
	e, ok, err := c.handle.Exited()
	if err != nil {
		r.log.Warn("read container exit", "container", c.id, "err", err)
		return
	}
	if !ok {
		return
	}
	r.setExited(c, e)
}

// setExited records how the container ended. c.mu must be held.
func (r *Runtime) setExited(c *container, e conmon.Exit) {
	rec := &c.rec
	rec.State = int32(runtimeapi.ContainerState_CONTAINER_EXITED)
	rec.ExitCode = int32(e.Code)
	rec.FinishedAt = e.FinishedAt.UnixNano()
	switch {
	case e.OOMKilled:
		rec.Reason = ReasonOOMKilled
	case e.Code == 0:
		rec.Reason = ReasonCompleted
	default:
		rec.Reason = ReasonError
	}
	if err := r.putContainer(rec); err != nil {
		r.log.Warn("record container exit", "container", c.id, "err", err)
	}
}

// StartContainer starts a created container.
func (v *View) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	r := v.r
	c, err := r.lookupContainer(v.owner, req.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.refresh(c)
	if c.removed || c.handle == nil || c.rec.State != int32(runtimeapi.ContainerState_CONTAINER_CREATED) {
		return nil, fmt.Errorf("start container %s (%s): it is %s, not created: %w", c.id, containerName(c.config),
			stateName(c.rec.State), ErrNotReady)
	}
	if err := c.handle.Start(ctx); err != nil {
		return nil, fmt.Errorf("start container %s (%s): %w", c.id, containerName(c.config), err)
	}
	c.rec.State = int32(runtimeapi.ContainerState_CONTAINER_RUNNING)
	c.rec.StartedAt = time.Now().UnixNano()
	if err := r.putContainer(&c.rec); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.id, err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

func stateName(s int32) string {
	return strings.ToLower(strings.TrimPrefix(runtimeapi.ContainerState(s).String(), "CONTAINER_"))
}

// StopContainer stops a container: SIGTERM, then SIGKILL after the timeout
// (seconds). Stopping an exited or unknown container is not an error.
func (v *View) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := v.r.lookupContainer(v.owner, req.GetContainerId())
	if errors.Is(err, ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := v.r.stopContainer(ctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (r *Runtime) stopContainer(ctx context.Context, c *container, grace time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.refresh(c)
	st := runtimeapi.ContainerState(c.rec.State)
	if c.removed || c.handle == nil || (st != runtimeapi.ContainerState_CONTAINER_RUNNING && st != runtimeapi.ContainerState_CONTAINER_CREATED) {
		return nil
	}
	e, err := c.handle.Stop(ctx, grace)
	if err != nil {
		return fmt.Errorf("stop container %s (%s): %w", c.id, containerName(c.config), err)
	}
	r.setExited(c, e)
	return nil
}

// RemoveContainer removes a container, killing it if it still runs.
// Removing an unknown container is not an error.
func (v *View) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := v.r.lookupContainer(v.owner, req.GetContainerId())
	if errors.Is(err, ErrNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := v.r.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (r *Runtime) removeContainer(ctx context.Context, c *container) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	if err := r.cleanupContainer(ctx, c); err != nil {
		return fmt.Errorf("remove container %s (%s): %w", c.id, containerName(c.config), err)
	}
	c.removed = true
	r.mu.Lock()
	delete(r.containers, c.id)
	r.mu.Unlock()
	return nil
}

// ContainerStatus returns the container's state, with the exit code, finish
// time and reason of one that ended.
func (v *View) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := v.r.lookupContainer(v.owner, req.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("container status: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v.r.refresh(c)
	rec, cfg := &c.rec, c.config
	st := &runtimeapi.ContainerStatus{
		Id:          c.id,
		Metadata:    cfg.GetMetadata(),
		State:       runtimeapi.ContainerState(rec.State),
		CreatedAt:   rec.CreatedAt,
		StartedAt:   rec.StartedAt,
		FinishedAt:  rec.FinishedAt,
		ExitCode:    rec.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: rec.ImageName, Annotations: cfg.GetImage().GetAnnotations()},
		ImageRef:    rec.ImageID,
		ImageId:     rec.ImageID,
		Reason:      rec.Reason,
		Message:     rec.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      v.r.statusMounts(cfg),
		LogPath:     rec.LogPath,
	}
	if res := cfg.GetLinux().GetResources(); res != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: st}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"pid": rec.PID, "sandboxID": c.sandboxID, "bundle": rec.Bundle, "owner": c.owner,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListContainers lists this owner's containers, filtered by ID (or ID
// prefix), state, sandbox and labels.
func (v *View) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	_, cs := v.r.snapshot(v.owner)
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range cs {
		if f.GetId() != "" && !strings.HasPrefix(c.id, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.sandboxID, f.GetPodSandboxId()) {
			continue
		}
		if !labelsMatch(c.config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		c.mu.Lock()
		if c.removed {
			c.mu.Unlock()
			continue
		}
		v.r.refresh(c)
		rec := c.rec
		c.mu.Unlock()
		state := runtimeapi.ContainerState(rec.State)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: c.id, PodSandboxId: c.sandboxID, Metadata: c.config.GetMetadata(),
			Image:    &runtimeapi.ImageSpec{Image: rec.ImageName},
			ImageRef: rec.ImageID, ImageId: rec.ImageID,
			State: state, CreatedAt: rec.CreatedAt,
			Labels: c.config.GetLabels(), Annotations: c.config.GetAnnotations(),
		})
	}
	return resp, nil
}

// running returns the handle of a running container, or an error wrapping
// ErrNotReady.
func (r *Runtime) running(owner, id, op string) (*container, *conmon.Handle, error) {
	c, err := r.lookupContainer(owner, id)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.refresh(c)
	if c.removed || c.handle == nil || c.rec.State != int32(runtimeapi.ContainerState_CONTAINER_RUNNING) {
		return nil, nil, fmt.Errorf("%s %s (%s): it is %s, not running: %w", op, c.id, containerName(c.config), stateName(c.rec.State), ErrNotReady)
	}
	return c, c.handle, nil
}

// ExecSync runs a command in a running container and returns its output
// and exit code. With a timeout (seconds) the command is killed when it
// runs longer, and the error wraps context.DeadlineExceeded.
func (v *View) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, _, err := v.r.running(v.owner, req.GetContainerId(), "exec in container")
	if err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec in container %s: no command: %w", c.id, ErrInvalidArgument)
	}
	proc, err := execProcess(c.rec.Bundle, req.GetCmd(), false)
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	if t := req.GetTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	var stdout, stderr limitedBuffer
	code, err := v.r.runc.Exec(ctx, c.id, proc, nil, &stdout, &stderr, false)
	if err != nil {
		return nil, fmt.Errorf("exec %q in container %s: %w", strings.Join(req.GetCmd(), " "), c.id, err)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.b, Stderr: stderr.b, ExitCode: int32(code)}, nil
}

// execProcess is the container's process (user, env, cwd, capabilities,
// seccomp come with the spec) running cmd instead.
func execProcess(bundle string, cmd []string, tty bool) (specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return specs.Process{}, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return specs.Process{}, err
	}
	if s.Process == nil {
		return specs.Process{}, errors.New("container spec has no process")
	}
	p := *s.Process
	p.Args = cmd
	p.Terminal = tty
	p.ConsoleSize = nil
	return p, nil
}

// limitedBuffer keeps the first maxExecOutput bytes written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxExecOutput - len(l.b); room > 0 {
		if len(p) > room {
			l.b = append(l.b, p[:room]...)
		} else {
			l.b = append(l.b, p...)
		}
	}
	return len(p), nil
}

// UpdateContainerResources changes the CPU and memory limits of a created
// or running container.
func (v *View) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	r := v.r
	c, err := r.lookupContainer(v.owner, req.GetContainerId())
	if err != nil {
		return nil, fmt.Errorf("update container resources: %w", err)
	}
	res := req.GetLinux()
	if res == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.refresh(c)
	st := runtimeapi.ContainerState(c.rec.State)
	if c.removed || (st != runtimeapi.ContainerState_CONTAINER_RUNNING && st != runtimeapi.ContainerState_CONTAINER_CREATED) {
		return nil, fmt.Errorf("update container resources %s: it is %s: %w", c.id, stateName(c.rec.State), ErrNotReady)
	}
	if err := r.runc.Update(ctx, c.id, ociResources(res)); err != nil {
		return nil, fmt.Errorf("update container resources %s: %w", c.id, err)
	}
	cfg := cloneConfig(c.config)
	if cfg.Linux == nil {
		cfg.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	cfg.Linux.Resources = res
	data, err := marshalProto(cfg)
	if err != nil {
		return nil, fmt.Errorf("update container resources %s: %w", c.id, err)
	}
	c.config, c.rec.Config = cfg, data
	if err := r.putContainer(&c.rec); err != nil {
		return nil, fmt.Errorf("update container resources %s: %w", c.id, err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ociResources converts the limits runc can change on a live container.
func ociResources(res *runtimeapi.LinuxContainerResources) *specs.LinuxResources {
	out := &specs.LinuxResources{CPU: &specs.LinuxCPU{}}
	if v := res.GetCpuShares(); v > 0 {
		u := uint64(v)
		out.CPU.Shares = &u
	}
	if v := res.GetCpuPeriod(); v > 0 {
		u := uint64(v)
		out.CPU.Period = &u
	}
	if v := res.GetCpuQuota(); v != 0 {
		q := v
		out.CPU.Quota = &q
	}
	out.CPU.Cpus, out.CPU.Mems = res.GetCpusetCpus(), res.GetCpusetMems()
	if v := res.GetMemoryLimitInBytes(); v > 0 {
		m := v
		out.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if len(res.GetUnified()) > 0 {
		out.Unified = res.GetUnified()
	}
	return out
}

// ReopenContainerLog makes conmon reopen the log of a running container
// after kubelet rotated it.
func (v *View) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, h, err := v.r.running(v.owner, req.GetContainerId(), "reopen log of container")
	if err != nil {
		return nil, err
	}
	if err := h.ReopenLog(ctx); err != nil {
		return nil, fmt.Errorf("reopen log of container %s: %w", c.id, err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
