package apiserver

import (
	"context"
	"log/slog"
	"reflect"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/peapod/peapod/internal/client"
	"github.com/peapod/peapod/internal/kubelet"
)

// fakeInspector knows one pod, awesomeapps/web.
type fakeInspector struct{}

var webInspection = kubelet.PodInspection{
	Namespace: "awesomeapps", Name: "web", UID: "u1", SandboxID: "sb1", Ready: true,
	IPs: []string{"10.88.0.2"}, InfraPID: 100, NetNS: "/run/netns/x",
	Containers: []kubelet.ContainerInspection{
		{Name: "client", ID: "c2", State: "CONTAINER_RUNNING", PID: 102},
		{Name: "web", ID: "c1", State: "CONTAINER_RUNNING", PID: 101},
	},
}

func (fakeInspector) InspectPod(_ context.Context, ns, name string) (*kubelet.PodInspection, error) {
	if ns != "awesomeapps" || name != "web" {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
	}
	in := webInspection
	return &in, nil
}

func TestInspectPodThroughTheAPI(t *testing.T) {
	s := New(nil, nil, slog.New(slog.DiscardHandler))
	s.SetPodInspector(fakeInspector{})
	c := serve(t, s)

	got, err := c.InspectPod(context.Background(), "awesomeapps", "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, webInspection) {
		t.Errorf("got %+v, want %+v", *got, webInspection)
	}
	for _, tc := range []struct{ ns, name string }{{"default", "web"}, {"awesomeapps", "nope"}} {
		_, err := c.InspectPod(context.Background(), tc.ns, tc.name)
		if client.Reason(err) != "NotFound" {
			t.Errorf("inspect %s/%s: %v (reason %q), want NotFound", tc.ns, tc.name, err, client.Reason(err))
		}
	}
}
