// Package kubelet is peapod's pod manager: it turns the Pods in the object
// store into running pods the way a kubelet does, through the same
// CRI-shaped runtime interface the CRI server serves (its own view of the
// runtime, owner "kubelet", so a real kubelet using the CRI and this one
// never see each other's sandboxes).
//
// One worker goroutine per pod, woken by the store's watch and by a
// periodic resync, compares the pod's spec with what the runtime has and
// takes one step at a time, as kubelet's SyncPod does: the sandbox first,
// then the init containers one by one (each must exit 0 before the next
// starts), then the app containers; a container that exited is restarted
// according to restartPolicy with the crash-loop back-off; the pod's status
// is then written to the store (status only) with kubelet's phases,
// conditions, reasons and messages, and every step leaves kubelet's events.
//
// Probes (probe.go) run one goroutine per probe of each running container,
// started and stopped by the pod worker with the container; their results
// make a container started and ready, and a failed liveness or startup
// probe makes the worker kill it. Node-level housekeeping (housekeeping.go)
// rotates container logs, removes what gone pods left and garbage-collects
// unused images under disk pressure.
//
// Nothing about a pod lives only in memory: containers carry kubelet's
// io.kubernetes.* labels and annotations (pod UID, container name, restart
// count, spec hash), so a restarted daemon finds its pods' sandboxes again
// and adopts them without restarting anything; a sandbox found dead (the
// machine rebooted) is replaced and the containers are started again.
//
// Layout under ROOT/pods (kubelet's /var/lib/kubelet/pods and
// /var/log/pods):
//
//	ROOT/pods/<uid>/volumes/kubernetes.io~<plugin>/<volume>   volumes
//	ROOT/pods/<namespace>_<name>_<uid>/<container>/<restart>.log   CRI logs
package kubelet
