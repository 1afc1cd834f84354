// Package runtime runs pods: a pod sandbox is a pinned network namespace
// attached to the pod network through CNI, the pod's resolv.conf, hosts and
// hostname files, a /dev/shm tmpfs, and an infra (pause) container that owns
// the pod's IPC and UTS namespaces (and its PID namespace when the pod shares
// one). Workload containers join those namespaces, run from an overlay of
// their image's shared layers, and are monitored by conmon.
//
// The API is the CRI RuntimeService with the CRI's own protobuf types
// (k8s.io/cri-api/pkg/apis/runtime/v1), so that the CRI gRPC server is a thin
// mapping and peapod's own pod manager drives pods exactly the way a kubelet
// does. Calls go through a View that belongs to one owner (For): a kubelet
// removes every sandbox it does not know about, so the CRI's sandboxes and
// those of peapod's pod manager must never show up in each other's lists.
// A sandbox or container of another owner is "not found" to a view.
//
// # Decisions
//
// Pause without a monitor. The pause process is created and started with
// runc directly; its stdio is /dev/null and nothing reads its exit code, so a
// conmon for it would only add a process per pod (conmon is ~0.3-0.4 MiB PSS,
// catatonit ~0.1 MiB). Whether it is alive is read from /proc (its PID plus
// its start time, so a recycled PID is never mistaken for it); a sandbox whose
// pause died is NOTREADY.
//
// Local pause image. With no configured pause image, the pause root
// filesystem is a directory under ROOT holding a copy of Debian's static
// catatonit, built once and shared read-only by every sandbox: no network, no
// pull, no overlay mount per pod. A configured image is pulled when missing and
// mounted per sandbox as an overlay (with a small upper dir for the mount
// points runc creates).
//
// Namespaces. The network namespace is pinned (package netns) so that CNI
// teardown works whatever happened to the pause process; containers join it
// by that path. IPC, UTS and PID are joined through /proc/<pause pid>/ns/*,
// as containerd does: they live as long as the pause process, which is the
// lifetime the CRI gives them.
//
// Network beside pause. The pinned namespace is made first; CNI configures
// it while the pause container is being created (they do not depend on each
// other), unless a pod sysctl names an interface CNI has yet to create.
// Measured with bench/pod (docs/benchmarks.md): RunPodSandbox p50 ~40 ms,
// pod start p50 ~80 ms unconfined, about half of containerd 2.4.2's.
//
// One runc process for pause. The pause container is started with `runc run
// --detach`, not `runc create` + `runc start`: same end state, one Go
// process start less (A/B over 60 interleaved pods: RunPodSandbox p50 69 ->
// 60 ms).
//
// No runc start for containers. StartContainer releases the created
// container's init through runc's exec fifo itself (runc.StartCreated), as
// `runc start` would, saving that process (~8 ms; StartContainer p50 now
// ~1 ms). What is left is runc 1.1 itself: a `runc create` costs ~25-30 ms
// without seccomp and ~15 ms more with the RuntimeDefault profile
// (libseccomp compiling ~400 rules for x86_64, x86 and x32 in runc init;
// the two 32-bit ABIs cost ~7 ms each, measured with runc alone). The local
// pause, a static native catatonit, gets the profile for its own ABI only
// (spec.SandboxParams.NativePause); the container keeps all three. No `runc
// state` runs on the start path, and the store's writes cost ~0.1 ms each
// (fdatasync is cheap here), so neither is worth batching. Measured with
// bench/pod beside containerd 2.4.2 (docs/benchmarks.md).
//
// Memory per running 1-container pod (every process the runtime added, not
// the workload): 2 processes, pause + conmon, 2.7 MiB RSS and 0.55 MiB PSS.
//
// Lazy status. No goroutine watches containers: conmon writes an exit file,
// and Status and List read it (a stat per running container). That is also
// what makes a restarted daemon report exits that happened while it was down.
//
// State. Sandboxes and containers are records in ROOT/runtime/state.db
// (bbolt), written before the work they describe is visible to a caller, so a
// crash at any point leaves a record that Remove can clean up.
//
// Layout (per daemon, so that daemons side by side never collide):
//
//	ROOT/runtime/state.db                 records
//	ROOT/runtime/pause/rootfs             the local pause root filesystem
//	ROOT/runtime/sandboxes/ID/            bundle (config.json), resolv.conf,
//	                                      hosts, hostname, shm (tmpfs mount),
//	                                      rootfs (configured pause image only)
//	ROOT/runtime/containers/ID/           bundle: config.json, rootfs (overlay
//	                                      mount), upper, work, conmon files,
//	                                      the log when the CRI gives no path
//	ROOT/runtime/cni/{cache,ipam}         libcni's cache, host-local leases
//	STATE/runtime/runc                    runc --root
//	STATE/runtime/netns                   pinned network namespaces
//	STATE/runtime/exits, STATE/runtime/a  conmon exit files, attach sockets
//
// Remove deletes every one of these for its object. Log files at a path the
// CRI chose belong to the caller (kubelet rotates and removes them).
//
// oom_score_adj. This host's root lacks CAP_SYS_RESOURCE, so no child may get
// a value below the daemon's own; spec.DetectHost reads that floor and the
// spec generators clamp to it.
package runtime
