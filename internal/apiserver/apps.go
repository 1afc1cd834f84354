package apiserver

// The apps/v1 group on Kubernetes' paths:
// /apis/apps/v1/namespaces/NS/deployments[/NAME] and
// /apis/apps/v1/deployments across namespaces. The handlers are the core
// ones (they find the kind by the path's resource); a resource of another
// group is not found here, as on a Kubernetes API server.

import (
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/objects"
)

const appsPrefix = "/apis/apps/v1"

func (s *Server) routeApps() {
	for _, r := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET " + appsPrefix + "/{resource}", s.coreList},
		{"GET " + appsPrefix + "/namespaces/{ns}/{resource}", s.coreList},
		{"POST " + appsPrefix + "/namespaces/{ns}/{resource}", s.coreCreate},
		{"GET " + appsPrefix + "/namespaces/{ns}/{resource}/{name}", s.coreGet},
		{"PUT " + appsPrefix + "/namespaces/{ns}/{resource}/{name}", s.coreUpdate},
		{"PATCH " + appsPrefix + "/namespaces/{ns}/{resource}/{name}", s.corePatch},
		{"DELETE " + appsPrefix + "/namespaces/{ns}/{resource}/{name}", s.coreDelete},
	} {
		s.mux.HandleFunc(r.pattern, inGroup("apps", r.h))
	}
}

// inGroup answers 404 for a resource that is not in the group.
func inGroup(group string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, err := objects.ForResource(r.PathValue("resource"))
		if err != nil || k.GVK.Group != group {
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
			return
		}
		h(w, r)
	}
}
