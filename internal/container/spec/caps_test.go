package spec

import (
	"slices"
	"strings"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// thisHost is like this VM: root holds every capability but CAP_SYS_RESOURCE.
var thisHost = Host{Capabilities: slices.DeleteFunc(slices.Clone(allCapabilities), func(c string) bool { return c == "CAP_SYS_RESOURCE" })}

func without(set []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(set), func(c string) bool { return slices.Contains(drop, c) })
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		wantErr    string
	}{
		{name: "default set", want: DefaultCapabilities},
		{name: "drop ALL", drop: []string{"ALL"}, want: nil},
		{name: "drop all lower case", drop: []string{"all"}, want: nil},
		{name: "drop ALL then add one", drop: []string{"ALL"}, add: []string{"NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "add without prefix and in lower case", add: []string{"sys_admin", "CAP_NET_ADMIN"}, want: append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN", "CAP_NET_ADMIN")},
		{name: "drop some", drop: []string{"NET_RAW", "cap_mknod"}, want: without(DefaultCapabilities, "CAP_NET_RAW", "CAP_MKNOD")},
		{name: "add ALL", add: []string{"ALL"}, want: thisHost.Capabilities},
		{name: "add ALL drop CHOWN", add: []string{"ALL"}, drop: []string{"CHOWN"}, want: without(thisHost.Capabilities, "CAP_CHOWN")},
		{name: "add and drop the same: drop wins", add: []string{"SYS_TIME"}, drop: []string{"SYS_TIME"}, want: DefaultCapabilities},
		{name: "drop unknown is harmless", drop: []string{"NOT_A_CAP"}, want: DefaultCapabilities},
		{name: "add unknown", add: []string{"NOT_A_CAP"}, wantErr: "unknown capability"},
		{name: "add one the host lacks", add: []string{"SYS_RESOURCE"}, wantErr: "does not hold it"},
		{name: "privileged gets what the host has", privileged: true, drop: []string{"ALL"}, want: thisHost.Capabilities},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := capabilitySet(&runtime.Capability{AddCapabilities: tt.add, DropCapabilities: tt.drop}, tt.privileged, thisHost)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, set := range map[string][]string{"bounding": got.Bounding, "effective": got.Effective, "permitted": got.Permitted} {
				if !slices.Equal(slices.Sorted(slices.Values(set)), slices.Sorted(slices.Values(tt.want))) {
					t.Errorf("%s = %v, want %v", name, set, tt.want)
				}
			}
			if got.Bounding == nil || len(got.Inheritable) != 0 || len(got.Ambient) != 0 {
				t.Errorf("bounding must be non-nil and inheritable/ambient empty: %+v", got)
			}
		})
	}
}

func TestAmbientCapabilities(t *testing.T) {
	got, err := capabilitySet(&runtime.Capability{DropCapabilities: []string{"ALL"}, AddAmbientCapabilities: []string{"net_bind_service"}}, false, thisHost)
	if err != nil {
		t.Fatal(err)
	}
	for name, set := range map[string][]string{"bounding": got.Bounding, "permitted": got.Permitted, "effective": got.Effective, "inheritable": got.Inheritable, "ambient": got.Ambient} {
		if !slices.Equal(set, []string{"CAP_NET_BIND_SERVICE"}) {
			t.Errorf("%s = %v", name, set)
		}
	}
}

func TestNoCapabilityRequestKeepsDefaults(t *testing.T) {
	got, err := capabilitySet(nil, false, Host{})
	if err != nil || !slices.Equal(got.Bounding, DefaultCapabilities) {
		t.Fatalf("caps = %v, %v", got, err)
	}
}
