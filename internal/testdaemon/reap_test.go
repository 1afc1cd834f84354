package testdaemon

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitRule(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"-N CNI-abc", []string{"-N", "CNI-abc"}},
		{`-A POSTROUTING -s 10.1.2.3/32 -m comment --comment "name: \"peapod\" id: \"x1\"" -j CNI-abc`,
			[]string{"-A", "POSTROUTING", "-s", "10.1.2.3/32", "-m", "comment", "--comment", `name: "peapod" id: "x1"`, "-j", "CNI-abc"}},
		{`-A X -m comment --comment "" -j ACCEPT`, []string{"-A", "X", "-m", "comment", "--comment", "", "-j", "ACCEPT"}},
		{"  ", nil},
	} {
		if got := splitRule(tc.line); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitRule(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

// A dump with pods of two daemons: 10.201.7.0/24 (ids a, b; b with a
// host port) and 10.202.0.0/24 (id c).
const natDump = `-P POSTROUTING ACCEPT
-N CNI-HOSTPORT-DNAT
-N CNI-HOSTPORT-MASQ
-N CNI-aaa
-N CNI-bbb
-N CNI-ccc
-N CNI-DN-bbb
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A POSTROUTING -s 10.201.7.2/32 -m comment --comment "name: \"peapod\" id: \"a\"" -j CNI-aaa
-A POSTROUTING -s 10.201.7.3/32 -m comment --comment "name: \"peapod\" id: \"b\"" -j CNI-bbb
-A POSTROUTING -s 10.202.0.2/32 -m comment --comment "name: \"peapod\" id: \"c\"" -j CNI-ccc
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"peapod\" id: \"b\"" -m multiport --dports 8080 -j CNI-DN-bbb
-A CNI-aaa -d 10.201.7.0/24 -m comment --comment "name: \"peapod\" id: \"a\"" -j ACCEPT
-A CNI-aaa ! -d 224.0.0.0/4 -m comment --comment "name: \"peapod\" id: \"a\"" -j MASQUERADE
`

func TestNATLeftovers(t *testing.T) {
	for _, tc := range []struct {
		subnet     string
		wantChains []string
		wantRules  int
	}{
		{"10.201.7.0/24", []string{"CNI-aaa", "CNI-bbb", "CNI-DN-bbb"}, 5},
		{"10.202.0.0/24", []string{"CNI-ccc"}, 1},
		{"10.203.0.0/24", nil, 0},
		{"not a subnet", nil, 0},
	} {
		rules, chains := natLeftovers(natDump, tc.subnet)
		if !reflect.DeepEqual(chains, tc.wantChains) || len(rules) != tc.wantRules {
			t.Errorf("%s: chains %q, %d rules; want %q, %d", tc.subnet, chains, len(rules), tc.wantChains, tc.wantRules)
		}
		for _, r := range rules {
			if strings.HasPrefix(r[0], "CNI-HOSTPORT-MASQ") || strings.Contains(strings.Join(r, " "), `id: "c"`) && tc.subnet != "10.202.0.0/24" {
				t.Errorf("%s: would delete another pod's or a shared rule: %q", tc.subnet, r)
			}
		}
	}
}

func TestMountsBelow(t *testing.T) {
	info := strings.Join([]string{
		"30 1 8:1 / / rw - ext4 /dev/sda1 rw",
		"40 30 0:5 / /tmp/d rw - tmpfs tmpfs rw",
		"41 40 0:6 / /tmp/d/state/shm rw - tmpfs shm rw",
		"42 41 0:7 / /tmp/d/root/my\\040vol rw - tmpfs tmpfs rw",
		"43 30 0:8 / /tmp/dx/state rw - tmpfs tmpfs rw",
	}, "\n")
	got := mountsBelow(info, "/tmp/d/")
	want := []string{"/tmp/d/root/my vol", "/tmp/d/state/shm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("mountsBelow = %q, want %q (deepest first, not /tmp/d itself nor /tmp/dx)", got, want)
	}
}

func TestNamesDir(t *testing.T) {
	dirs := []string{"/tmp/peapod-e2e-1", "/run/pdpod-2/"}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"conmon", "-b", "/tmp/peapod-e2e-1/state/c/bundle"}, true},
		{[]string{"conmon", "--exit-dir=/run/pdpod-2/exits"}, true},
		{[]string{"conmon", "-b", "/tmp/peapod-e2e-12/state/c"}, false},
		{[]string{"conmon", "-b", "/run/pdpod-22/c"}, false},
	} {
		if got := namesDir(tc.args, dirs); got != tc.want {
			t.Errorf("namesDir(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestConfigIsolates(t *testing.T) {
	d, err := New(Options{Bin: "/bin/true", Image: `certs_dir = "/etc/x"`, Extra: "[runtime]\nrunc = \"/usr/sbin/runc\"\n"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	text := d.configText()
	for _, want := range []string{
		`certs_dir = "/etc/x"`,
		`registries_config = "` + d.Dir + `/registries.conf"`,
		`cni_conf_dir = "` + d.Dir + `/cni"`,
		`bridge = "` + d.Bridge + `"`,
		`subnet = "` + d.Subnet + `"`,
		"[runtime]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %s:\n%s", want, text)
		}
	}
	if strings.Count(text, "certs_dir") != 1 {
		t.Errorf("certs_dir given twice:\n%s", text)
	}
	other, err := New(Options{Bin: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	if other.Dir == d.Dir || other.Bridge == d.Bridge || len(d.Bridge) > 15 {
		t.Errorf("two daemons share a directory or bridge, or the name is too long: %s %s, %s %s", d.Dir, other.Dir, d.Bridge, other.Bridge)
	}
}
