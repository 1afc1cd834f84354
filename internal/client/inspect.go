package client

import (
	"context"
	"net/url"

	"github.com/peapod/peapod/internal/kubelet"
)

// InspectPod returns the runtime's view of a pod (sandbox ID, infra PID,
// each container's ID and host PID) for `peapod inspect pod`.
func (c *Client) InspectPod(ctx context.Context, ns, name string) (*kubelet.PodInspection, error) {
	var in kubelet.PodInspection
	path := "/apis/peapod.io/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(name) + "/runtime"
	if err := c.getJSON(ctx, path, &in); err != nil {
		return nil, err
	}
	return &in, nil
}
