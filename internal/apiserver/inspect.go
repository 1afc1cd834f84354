package apiserver

// A pod's runtime view (sandbox, infra process, containers and their host
// PIDs) for `peapod inspect pod`. Kubernetes has no such resource — crictl
// reads it from the runtime — so it lives in peapod's own group, beside the
// pod's name: GET /apis/peapod.io/v1/namespaces/NS/pods/NAME/runtime.

import (
	"context"
	"net/http"

	"github.com/peapod/peapod/internal/kubelet"
)

// PodInspector is what the inspect endpoint needs from the pod manager
// (*kubelet.Kubelet).
type PodInspector interface {
	InspectPod(ctx context.Context, ns, name string) (*kubelet.PodInspection, error)
}

var _ PodInspector = (*kubelet.Kubelet)(nil)

// PodRuntimePath is the pattern of a pod's runtime view.
const PodRuntimePath = "/apis/peapod.io/v1/namespaces/{ns}/pods/{name}/runtime"

// SetPodInspector serves pods' runtime views with p. Call it once, before
// Serve.
func (s *Server) SetPodInspector(p PodInspector) {
	s.mux.HandleFunc("GET "+PodRuntimePath, func(w http.ResponseWriter, r *http.Request) {
		in, err := p.InspectPod(r.Context(), r.PathValue("ns"), r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, in)
	})
}
