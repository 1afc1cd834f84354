package kubelet

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels and annotations kubelet puts on sandboxes and containers
// (pkg/kubelet/types/labels.go, kuberuntime/labels.go). They are how a
// restarted daemon finds which pod and container a runtime object is.
const (
	LabelPodName       = "io.kubernetes.pod.name"
	LabelPodNamespace  = "io.kubernetes.pod.namespace"
	LabelPodUID        = "io.kubernetes.pod.uid"
	LabelContainerName = "io.kubernetes.container.name"

	AnnotationContainerHash          = "io.kubernetes.container.hash"
	AnnotationRestartCount           = "io.kubernetes.container.restartCount"
	AnnotationTerminationMessagePath = "io.kubernetes.container.terminationMessagePath"
	AnnotationTerminationMsgPolicy   = "io.kubernetes.container.terminationMessagePolicy"
	AnnotationPodTerminationGrace    = "io.kubernetes.pod.terminationGracePeriod"
	AnnotationContainerPorts         = "io.kubernetes.container.ports"
)

// LogDir is a pod's log directory: ROOT/pods/<ns>_<name>_<uid>.
func (k *Kubelet) LogDir(pod *corev1.Pod) string {
	return filepath.Join(k.podsDir, pod.Namespace+"_"+pod.Name+"_"+string(pod.UID))
}

// sandboxConfig is the PodSandboxConfig kubelet would send for pod
// (kuberuntime_sandbox.go generatePodSandboxConfig).
func (k *Kubelet) sandboxConfig(pod *corev1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for key, v := range pod.Labels {
		labels[key] = v
	}
	labels[LabelPodName] = pod.Name
	labels[LabelPodNamespace] = pod.Namespace
	labels[LabelPodUID] = string(pod.UID)
	annotations := map[string]string{}
	for key, v := range pod.Annotations {
		annotations[key] = v
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID), Attempt: attempt,
		},
		LogDirectory: k.LogDir(pod),
		Labels:       labels,
		Annotations:  annotations,
		DnsConfig:    dnsConfig(pod),
	}
	if !pod.Spec.HostNetwork {
		cfg.Hostname = podHostname(pod)
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			pm := &runtimeapi.PortMapping{ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP}
			switch p.Protocol {
			case corev1.ProtocolUDP:
				pm.Protocol = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				pm.Protocol = runtimeapi.Protocol_SCTP
			default:
				pm.Protocol = runtimeapi.Protocol_TCP
			}
			cfg.PortMappings = append(cfg.PortMappings, pm)
		}
	}
	lc := &runtimeapi.LinuxPodSandboxConfig{
		SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: namespaceOptions(pod),
		},
	}
	if sc := pod.Spec.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			lc.SecurityContext.RunAsUser = &runtimeapi.Int64Value{Value: *sc.RunAsUser}
		}
		if sc.RunAsGroup != nil {
			lc.SecurityContext.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
		}
		lc.SecurityContext.SupplementalGroups = supplementalGroups(sc)
		lc.SecurityContext.Seccomp = seccompProfile(sc.SeccompProfile, nil, false)
		if len(sc.Sysctls) > 0 {
			lc.Sysctls = map[string]string{}
			for _, s := range sc.Sysctls {
				lc.Sysctls[s.Name] = s.Value
			}
		}
	}
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			lc.SecurityContext.Privileged = true
		}
	}
	if k.cgroups != nil {
		lc.CgroupParent = podCgroupName(k.opts.CgroupRoot, pod)
	}
	cfg.Linux = lc
	return cfg
}

// podHostname is spec.hostname or the pod name, cut to 63 characters as
// kubelet does.
func podHostname(pod *corev1.Pod) string {
	h := pod.Spec.Hostname
	if h == "" {
		h = pod.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func namespaceOptions(pod *corev1.Pod) *runtimeapi.NamespaceOption {
	o := &runtimeapi.NamespaceOption{
		Network: runtimeapi.NamespaceMode_POD,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
	if pod.Spec.HostNetwork {
		o.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		o.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case pod.Spec.HostPID:
		o.Pid = runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		o.Pid = runtimeapi.NamespaceMode_POD
	}
	return o
}

// hostResolvConf is read for pods whose dnsConfig must be merged with the
// node's resolver settings; a variable so tests can point it elsewhere.
var hostResolvConf = "/etc/resolv.conf"

// dnsConfig follows kubelet's dnsPolicy rules for a node without cluster
// DNS: "None" uses the pod's dnsConfig alone; every other policy uses the
// node's resolv.conf (nil: the runtime copies it) merged with dnsConfig.
func dnsConfig(pod *corev1.Pod) *runtimeapi.DNSConfig {
	pc := pod.Spec.DNSConfig
	if pod.Spec.DNSPolicy == corev1.DNSNone {
		c := &runtimeapi.DNSConfig{}
		if pc != nil {
			c.Servers = append(c.Servers, pc.Nameservers...)
			c.Searches = append(c.Searches, pc.Searches...)
			for _, o := range pc.Options {
				c.Options = append(c.Options, dnsOption(o))
			}
		}
		return c
	}
	if pc == nil {
		return nil
	}
	c := &runtimeapi.DNSConfig{}
	if f, err := os.Open(hostResolvConf); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			switch fields[0] {
			case "nameserver":
				c.Servers = append(c.Servers, fields[1])
			case "search", "domain":
				c.Searches = append(c.Searches, fields[1:]...)
			case "options":
				c.Options = append(c.Options, fields[1:]...)
			}
		}
		f.Close()
	}
	c.Servers = appendUnique(c.Servers, pc.Nameservers...)
	c.Searches = appendUnique(c.Searches, pc.Searches...)
	for _, o := range pc.Options {
		name := o.Name
		c.Options = slicesDeleteFunc(c.Options, func(s string) bool { return s == name || strings.HasPrefix(s, name+":") })
		c.Options = append(c.Options, dnsOption(o))
	}
	return c
}

func dnsOption(o corev1.PodDNSConfigOption) string {
	if o.Value != nil {
		return o.Name + ":" + *o.Value
	}
	return o.Name
}

func appendUnique(list []string, more ...string) []string {
	for _, m := range more {
		found := false
		for _, l := range list {
			if l == m {
				found = true
				break
			}
		}
		if !found {
			list = append(list, m)
		}
	}
	return list
}

func slicesDeleteFunc(s []string, del func(string) bool) []string {
	out := s[:0]
	for _, v := range s {
		if !del(v) {
			out = append(out, v)
		}
	}
	return out
}

func supplementalGroups(sc *corev1.PodSecurityContext) []int64 {
	var g []int64
	if sc == nil {
		return nil
	}
	if sc.FSGroup != nil {
		g = append(g, *sc.FSGroup)
	}
	return append(g, sc.SupplementalGroups...)
}

// seccompProfile maps a container's (or else the pod's) seccompProfile.
// Without one kubelet asks for Unconfined (seccompDefault is off by
// default); privileged containers are always unconfined.
func seccompProfile(container, pod *corev1.SeccompProfile, privileged bool) *runtimeapi.SecurityProfile {
	p := container
	if p == nil {
		p = pod
	}
	if privileged || p == nil {
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	case corev1.SeccompProfileTypeLocalhost:
		ref := ""
		if p.LocalhostProfile != nil {
			ref = *p.LocalhostProfile
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
}
