package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNodeName(t *testing.T) {
	tests := []struct {
		name, nodeName string
		wantNode       string
		runs           bool
	}{
		{"unbound pod is bound here", "", "node1", true},
		{"pod bound here runs", "node1", "node1", true},
		{"pod bound elsewhere waits", "node2", "node2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			p := simplePod("n", corev1.RestartPolicyAlways, "a")
			p.Spec.NodeName = tt.nodeName
			h.create(p)
			h.sync("n")
			h.sync("n")
			p = h.pod("n")
			if p.Spec.NodeName != tt.wantNode {
				t.Errorf("spec.nodeName %q, want %q", p.Spec.NodeName, tt.wantNode)
			}
			if got := h.rt.createdNames() == "a"; got != tt.runs {
				t.Errorf("containers created %q, want run=%v", h.rt.createdNames(), tt.runs)
			}
			if tt.runs {
				if p.Status.Phase != corev1.PodRunning {
					t.Errorf("phase %s, want Running", p.Status.Phase)
				}
				return
			}
			if sbs, _ := h.rt.counts(); sbs != 0 {
				t.Errorf("%d sandboxes for a pod bound to another node", sbs)
			}
			want := `Pod is bound to node "node2", this node is "node1": not run here`
			if p.Status.Phase != corev1.PodPending || p.Status.Reason != ReasonNodeMismatch || p.Status.Message != want {
				t.Errorf("status phase %s reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
			}
			if !h.hasEvent("n", "Warning NodeMismatch "+want) {
				t.Errorf("no NodeMismatch event in %v", h.events("n"))
			}
			if n := len(h.events("n")); n != 1 {
				t.Errorf("%d events after two syncs, want 1", n)
			}
		})
	}
}
