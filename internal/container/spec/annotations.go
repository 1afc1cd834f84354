package spec

import (
	"strconv"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotations containerd's CRI plugin puts on its specs; tools that read
// config.json (monitoring agents, runc hooks, debugging scripts) recognise
// pods and containers by them.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationSandboxLogDir    = "io.kubernetes.cri.sandbox-log-directory"
	AnnotationSandboxImageName = "io.kubernetes.cri.podsandbox.image-name"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"
	AnnotationSandboxCPUPeriod = "io.kubernetes.cri.sandbox-cpu-period"
	AnnotationSandboxCPUQuota  = "io.kubernetes.cri.sandbox-cpu-quota"
	AnnotationSandboxCPUShares = "io.kubernetes.cri.sandbox-cpu-shares"
	AnnotationSandboxMemory    = "io.kubernetes.cri.sandbox-memory"

	ContainerTypeSandbox   = "sandbox"
	ContainerTypeContainer = "container"
)

func podAnnotations(sandboxID string, pod *runtime.PodSandboxConfig) map[string]string {
	md := pod.GetMetadata()
	return map[string]string{
		AnnotationSandboxID:        sandboxID,
		AnnotationSandboxName:      md.GetName(),
		AnnotationSandboxNamespace: md.GetNamespace(),
		AnnotationSandboxUID:       md.GetUid(),
	}
}

func sandboxAnnotations(sandboxID, imageName string, pod *runtime.PodSandboxConfig) map[string]string {
	a := podAnnotations(sandboxID, pod)
	a[AnnotationContainerType] = ContainerTypeSandbox
	a[AnnotationSandboxLogDir] = pod.GetLogDirectory()
	a[AnnotationSandboxImageName] = imageName
	if r := pod.GetLinux().GetResources(); r != nil {
		a[AnnotationSandboxCPUPeriod] = strconv.FormatInt(r.GetCpuPeriod(), 10)
		a[AnnotationSandboxCPUQuota] = strconv.FormatInt(r.GetCpuQuota(), 10)
		a[AnnotationSandboxCPUShares] = strconv.FormatInt(r.GetCpuShares(), 10)
		a[AnnotationSandboxMemory] = strconv.FormatInt(r.GetMemoryLimitInBytes(), 10)
	}
	return a
}

func containerAnnotations(sandboxID, containerName, imageName string, pod *runtime.PodSandboxConfig) map[string]string {
	a := podAnnotations(sandboxID, pod)
	a[AnnotationContainerType] = ContainerTypeContainer
	a[AnnotationContainerName] = containerName
	a[AnnotationImageName] = imageName
	return a
}
