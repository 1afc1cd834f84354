package kubelet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/kubelet/volumes"
	"github.com/peapod/peapod/internal/objects"
)

// containerHash identifies a container's spec, so that a changed spec (a
// new image through an update) restarts the container, as kubelet's
// io.kubernetes.container.hash does.
func containerHash(c *corev1.Container) string {
	b, _ := json.Marshal(c)
	h := fnv.New32a()
	h.Write(b)
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

// containerLogPath is kubelet's log file name relative to the pod's log
// directory: <container>/<restartCount>.log.
func containerLogPath(name string, restartCount int) string {
	return filepath.Join(name, strconv.Itoa(restartCount)+".log")
}

// containerConfig is the ContainerConfig kubelet would send
// (kuberuntime_container.go generateContainerConfig).
func (k *Kubelet) containerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, img *store.Image, restartCount int, vols map[string]string) (*runtimeapi.ContainerConfig, []string, error) {
	if err := verifyRunAsNonRoot(pod, c, img); err != nil {
		return nil, nil, err
	}
	env, skipped, err := k.makeEnv(ctx, pod, c)
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{}
	var envs []*runtimeapi.KeyValue
	for _, e := range env {
		vars[e.name] = e.value
		envs = append(envs, &runtimeapi.KeyValue{Key: e.name, Value: []byte(e.value)})
	}
	var command, args []string
	for _, s := range c.Command {
		command = append(command, Expand(s, vars))
	}
	for _, s := range c.Args {
		args = append(args, Expand(s, vars))
	}
	mounts, err := volumes.Mounts(c, vols)
	if err != nil {
		return nil, nil, &configError{err.Error()}
	}
	grace := objects.DefaultTerminationGracePeriodSeconds
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	annotations := map[string]string{
		AnnotationContainerHash:          containerHash(c),
		AnnotationRestartCount:           strconv.Itoa(restartCount),
		AnnotationTerminationMessagePath: c.TerminationMessagePath,
		AnnotationTerminationMsgPolicy:   string(c.TerminationMessagePolicy),
		AnnotationPodTerminationGrace:    strconv.FormatInt(grace, 10),
	}
	if len(c.Ports) > 0 {
		b, _ := json.Marshal(c.Ports)
		annotations[AnnotationContainerPorts] = string(b)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: uint32(restartCount)},
		Image:      &runtimeapi.ImageSpec{Image: img.ID.String(), UserSpecifiedImage: c.Image},
		Command:    command,
		Args:       args,
		WorkingDir: c.WorkingDir,
		Envs:       envs,
		Mounts:     mounts,
		Labels: map[string]string{
			LabelPodName: pod.Name, LabelPodNamespace: pod.Namespace, LabelPodUID: string(pod.UID), LabelContainerName: c.Name,
		},
		Annotations: annotations,
		LogPath:     containerLogPath(c.Name, restartCount),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       k.linuxResources(pod, c),
			SecurityContext: containerSecurityContext(pod, c),
		},
	}
	return cfg, skipped, nil
}

// verifyRunAsNonRoot refuses to run a container as root when runAsNonRoot
// is set, with kubelet's messages.
func verifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container, img *store.Image) error {
	var nonRoot *bool
	var uid *int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		nonRoot, uid = sc.RunAsNonRoot, sc.RunAsUser
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsNonRoot != nil {
			nonRoot = sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
	}
	if nonRoot == nil || !*nonRoot {
		return nil
	}
	if uid != nil {
		if *uid == 0 {
			return &configError{"container's runAsUser breaks non-root policy (pod: " + podString(pod) + ", container: " + c.Name + ")"}
		}
		return nil
	}
	user := ""
	if img != nil {
		user = img.Config.Config.User
	}
	user, _, _ = strings.Cut(user, ":")
	switch n, err := strconv.ParseInt(user, 10, 64); {
	case user == "" || (err == nil && n == 0) || user == "root":
		return &configError{"container has runAsNonRoot and image will run as root (pod: " + podString(pod) + ", container: " + c.Name + ")"}
	case err != nil:
		return &configError{fmt.Sprintf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %s, container: %s)", user, podString(pod), c.Name)}
	}
	return nil
}

// podString is kubelet's format.Pod: name_namespace(uid).
func podString(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// Kubelet's CPU conversion constants (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares      = 2
	maxShares      = 262144
	sharesPerCPU   = 1024
	milliPerCPU    = 1000
	quotaPeriod    = 100000
	minQuotaPeriod = 1000
)

// linuxResources converts requests and limits as kubelet does: CPU request
// to shares, CPU limit to a CFS quota over a 100 ms period, memory limit,
// and the OOM score adjustment of the pod's QoS class.
func (k *Kubelet) linuxResources(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	cpuReq, hasReq := c.Resources.Requests[corev1.ResourceCPU]
	cpuLim, hasLim := c.Resources.Limits[corev1.ResourceCPU]
	if !hasReq && hasLim {
		cpuReq, hasReq = cpuLim, true
	}
	shares := int64(minShares)
	if hasReq {
		shares = cpuReq.MilliValue() * sharesPerCPU / milliPerCPU
		shares = max(min(shares, maxShares), minShares)
	}
	r.CpuShares = shares
	if hasLim && !cpuLim.IsZero() {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = max(cpuLim.MilliValue()*quotaPeriod/milliPerCPU, minQuotaPeriod)
	}
	if m, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		r.MemoryLimitInBytes = m.Value()
	}
	r.OomScoreAdj = oomScoreAdj(pod, c, k.memoryCapacity)
	return r
}

// oomScoreAdj is kubelet's policy (pkg/kubelet/qos/policy.go).
func oomScoreAdj(pod *corev1.Pod, c *corev1.Container, capacity int64) int64 {
	switch objects.QOSClass(&pod.Spec) {
	case corev1.PodQOSGuaranteed:
		return -997
	case corev1.PodQOSBestEffort:
		return 1000
	}
	req := c.Resources.Requests.Memory().Value()
	if capacity <= 0 {
		return 999
	}
	adj := 1000 - (1000*req)/capacity
	if adj < 1000+(-997) {
		return 1000 + (-997)
	}
	if adj == 1000 {
		return 999
	}
	return adj
}

// memoryCapacity reads MemTotal from /proc/meminfo.
func memoryCapacity() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// containerSecurityContext merges the pod's and the container's security
// contexts into the CRI's, as kubelet's determineEffectiveSecurityContext
// and convertToRuntimeSecurityContext do.
func containerSecurityContext(pod *corev1.Pod, c *corev1.Container) *runtimeapi.LinuxContainerSecurityContext {
	out := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	psc := pod.Spec.SecurityContext
	csc := c.SecurityContext
	var podSeccomp *corev1.SeccompProfile
	if psc != nil {
		if psc.RunAsUser != nil {
			out.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			out.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		out.SupplementalGroups = supplementalGroups(psc)
		podSeccomp = psc.SeccompProfile
		if psc.SELinuxOptions != nil {
			out.SelinuxOptions = seLinux(psc.SELinuxOptions)
		}
	}
	var ctrSeccomp *corev1.SeccompProfile
	if csc != nil {
		if csc.RunAsUser != nil {
			out.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
		}
		if csc.RunAsGroup != nil {
			out.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
		}
		if csc.Privileged != nil {
			out.Privileged = *csc.Privileged
		}
		if csc.ReadOnlyRootFilesystem != nil {
			out.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
		}
		if csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation {
			out.NoNewPrivs = true
		}
		if csc.Capabilities != nil {
			out.Capabilities = &runtimeapi.Capability{}
			for _, a := range csc.Capabilities.Add {
				out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(a))
			}
			for _, d := range csc.Capabilities.Drop {
				out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(d))
			}
		}
		if csc.SELinuxOptions != nil {
			out.SelinuxOptions = seLinux(csc.SELinuxOptions)
		}
		ctrSeccomp = csc.SeccompProfile
	}
	out.Seccomp = seccompProfile(ctrSeccomp, podSeccomp, out.Privileged)
	return out
}

func seLinux(o *corev1.SELinuxOptions) *runtimeapi.SELinuxOption {
	return &runtimeapi.SELinuxOption{User: o.User, Role: o.Role, Type: o.Type, Level: o.Level}
}
