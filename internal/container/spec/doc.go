// Package spec turns a CRI request and an image configuration into the OCI
// runtime spec (config.json) that runc runs: one for the pod's infra (pause)
// container, built by Sandbox, and one for every workload container, built by
// Container.
//
// The request types are the CRI protobuf types themselves
// (k8s.io/cri-api/pkg/apis/runtime/v1), so the CRI server maps nothing and
// the pod manager speaks the same language. The image configuration is the
// OCI image-spec ImageConfig (ocispec.Image.Config), the type the image store
// keeps.
//
// The rules follow what kubelet expects of containerd (and, where containerd
// leaves a choice open, CRI-O): Kubernetes' command/args rules, users
// resolved in the image's /etc/passwd and /etc/group, containerd's default
// capabilities, masked and read-only paths, and mounts ordered so that a
// parent never hides a child. Everything this host cannot grant is clamped or
// refused here, with an error that names the field, instead of failing later
// inside runc with an opaque message: root on this machine lacks
// CAP_SYS_RESOURCE, so an oom_score_adj below the daemon's own, an rlimit
// above its hard limit, or a capability the daemon does not hold would all
// make runc fail. Host describes those limits; DetectHost reads them.
//
// Nothing here starts processes or creates cgroups: runc does that from the
// spec. The only side effects are reads of the image's root filesystem
// (users), of /dev (privileged containers and CRI devices), and the creation
// of a missing CRI mount source directory, as containerd and CRI-O do.
package spec
