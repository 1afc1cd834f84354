package cni

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/sandbox/netns"
)

const pluginDir = "/usr/lib/cni"

func requireTools(t *testing.T) {
	t.Helper()
	for _, p := range []string{"bridge", "host-local", "portmap", "loopback"} {
		if _, err := os.Stat(filepath.Join(pluginDir, p)); err != nil {
			t.Fatalf("CNI plugin %s missing (%v): install it with `make deps`", p, err)
		}
	}
	for _, b := range []string{"iptables", "iptables-save", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s missing: install it with `make deps`", b)
		}
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randInt(t *testing.T, n int64) int64 {
	t.Helper()
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fixture is one test's private network: its own conf, cache and lease
// dirs, bridge and /24, and what must be gone once the test is over.
type fixture struct {
	t        *testing.T
	net      *Network
	opts     Options
	prefix   string // "10.a.b." of the subnet
	nsDir    string
	mu       sync.Mutex
	ids      []string
	chains   map[string]bool
	podNames int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	requireTools(t)
	var subnet, prefix string
	routes := run(t, "ip", "-4", "route", "show")
	for i := 0; ; i++ {
		prefix = fmt.Sprintf("10.%d.%d.", 200+randInt(t, 51), randInt(t, 256))
		if !strings.Contains(routes, prefix) {
			break
		}
		if i > 50 {
			t.Fatal("no free test subnet")
		}
	}
	subnet = prefix + "0/24"
	dir := t.TempDir()
	f := &fixture{
		t: t,
		opts: Options{
			ConfDir:     filepath.Join(dir, "net.d"),
			BinDirs:     []string{"/nonexistent/cni", pluginDir},
			CacheDir:    filepath.Join(dir, "cache"),
			Bridge:      "pptest" + randHex(t, 2),
			Subnet:      subnet,
			IPAMDataDir: filepath.Join(dir, "ipam"),
		},
		prefix: prefix,
		nsDir:  filepath.Join(dir, "netns"),
		chains: map[string]bool{},
	}
	n, err := New(f.opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.net = n
	t.Cleanup(f.cleanup)
	return f
}

// cleanup removes the bridge and checks nothing of the test stays in
// iptables. It runs after the pods' own cleanups (registered later, so run
// earlier).
func (f *fixture) cleanup() {
	t := f.t
	if out, err := exec.Command("ip", "link", "del", f.opts.Bridge).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Cannot find device") {
		t.Errorf("delete bridge %s: %v: %s", f.opts.Bridge, err, out)
	}
	if left := f.iptablesLeftovers(); len(left) > 0 {
		t.Errorf("iptables still holds this test's rules/chains:\n%s", strings.Join(left, "\n"))
		f.removeRules(left)
	}
}

var chainRE = regexp.MustCompile(`(?:^-A |-j |^:)(CNI-[A-Za-z0-9-]+)`)

// ours reports whether an iptables-save line belongs to this test's pods:
// it names one of its sandbox IDs, an address of its subnet, or a chain that
// was seen in such a line while the pods were up.
func (f *fixture) ours(line string) bool {
	if strings.Contains(line, f.prefix) {
		return true
	}
	for _, id := range f.ids {
		if strings.Contains(line, id) {
			return true
		}
	}
	for _, m := range chainRE.FindAllStringSubmatch(line, -1) {
		if f.chains[m[1]] {
			return true
		}
	}
	return false
}

func iptablesSave(t *testing.T) []string {
	t.Helper()
	return strings.Split(run(t, "iptables-save"), "\n")
}

// recordChains remembers the per-pod chains the plugins made, so that an
// emptied but undeleted chain still counts as a leftover.
func (f *fixture) recordChains() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, line := range iptablesSave(f.t) {
		if !f.ours(line) {
			continue
		}
		for _, m := range chainRE.FindAllStringSubmatch(line, -1) {
			if !strings.HasPrefix(m[1], "CNI-HOSTPORT-") { // portmap's shared chains
				f.chains[m[1]] = true
			}
		}
	}
}

func (f *fixture) iptablesLeftovers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var left []string
	for _, line := range iptablesSave(f.t) {
		if !strings.HasPrefix(line, "#") && f.ours(line) {
			left = append(left, line)
		}
	}
	return left
}

// removeRules undoes leftovers so a failing test does not poison the host.
func (f *fixture) removeRules(lines []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			args := append([]string{"-t", "nat", "-D"}, splitRule(strings.TrimPrefix(l, "-A "))...)
			_ = exec.Command("iptables", args...).Run()
		}
	}
	for c := range f.chains {
		_ = exec.Command("iptables", "-t", "nat", "-F", c).Run()
		_ = exec.Command("iptables", "-t", "nat", "-X", c).Run()
	}
}

// splitRule splits an iptables-save rule, honouring double quotes.
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, esc := false, false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == '"':
			inQ = !inQ
		case r == ' ' && !inQ:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

type testPod struct {
	Pod
	ns *netns.NS
}

// newPod makes a pod with its own pinned netns; Teardown and the netns
// removal run in cleanup even when the test fails.
func (f *fixture) newPod(ports ...PortMapping) *testPod {
	t := f.t
	ns, err := netns.New(f.nsDir)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	f.mu.Lock()
	f.podNames++
	id := randHex(t, 32)
	f.ids = append(f.ids, id)
	name := fmt.Sprintf("pod%d", f.podNames)
	f.mu.Unlock()
	p := &testPod{Pod: Pod{
		ID: id, Name: name, Namespace: "default", UID: randHex(t, 16),
		NetNSPath: ns.Path(), PortMappings: ports,
	}, ns: ns}
	t.Cleanup(func() {
		if err := f.net.Teardown(context.Background(), p.Pod); err != nil {
			t.Errorf("cleanup teardown: %v", err)
		}
		if err := ns.Remove(); err != nil {
			t.Errorf("cleanup netns: %v", err)
		}
	})
	return p
}

func (f *fixture) setup(p *testPod) *Result {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := f.net.Setup(ctx, p.Pod)
	if err != nil {
		f.t.Fatalf("Setup %s: %v", p.Name, err)
	}
	f.recordChains()
	return r
}

func (f *fixture) teardown(p *testPod) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.net.Teardown(ctx, p.Pod); err != nil {
		f.t.Fatalf("Teardown %s: %v", p.Name, err)
	}
}

// bridgePorts lists the interfaces enslaved to the test bridge.
func (f *fixture) bridgePorts() []string {
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", f.opts.Bridge, "brif"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// leases lists the IPs host-local holds for the default network.
func (f *fixture) leases() []string {
	entries, err := os.ReadDir(filepath.Join(f.opts.IPAMDataDir, DefaultNetworkName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var ips []string
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			ips = append(ips, e.Name())
		}
	}
	return ips
}

func hostVeth(t *testing.T, r *Result, bridge string) string {
	t.Helper()
	var veths []string
	for _, i := range r.Interfaces {
		if i.Sandbox == "" && i.Name != bridge {
			veths = append(veths, i.Name)
		}
	}
	if len(veths) != 1 {
		t.Fatalf("result has host-side interfaces %v besides the bridge, want exactly one veth", veths)
	}
	return veths[0]
}

// echoIn starts a TCP server inside the pod's netns that answers each
// connection with "hello from <name>: <first line>" and returns its port.
func echoIn(t *testing.T, p *testPod, port int) int {
	t.Helper()
	var ln net.Listener
	err := p.ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", p.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "hello from %s: %s", p.Name, line)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func talk(dial func() (net.Conn, error)) (string, error) {
	c, err := dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

func dialFromHost(addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 10*time.Second) }
}

func TestDefaultConfigWrittenAndReady(t *testing.T) {
	f := newFixture(t)
	if got, want := f.net.ConfigFile(), filepath.Join(f.opts.ConfDir, DefaultConfFile); got != want {
		t.Fatalf("ConfigFile() = %q, want %q", got, want)
	}
	b, err := os.ReadFile(filepath.Join(f.opts.ConfDir, DefaultConfFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cniVersion": "1.0.0"`, `"bridge": "` + f.opts.Bridge + `"`,
		`"subnet": "` + f.opts.Subnet + `"`, `"dataDir": "` + f.opts.IPAMDataDir + `"`,
		`"type": "portmap"`, `"portMappings": true`, `"ipMasq": true`, `"hairpinMode": true`, `"isGateway": true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("default config lacks %s:\n%s", want, b)
		}
	}
	if err := f.net.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
}

func TestPodNetwork(t *testing.T) {
	f := newFixture(t)
	a, b := f.newPod(), f.newPod()
	ra, rb := f.setup(a), f.setup(b)

	_, subnet, _ := net.ParseCIDR(f.opts.Subnet)
	for _, r := range []*Result{ra, rb} {
		if r.IP == nil || !subnet.Contains(r.IP) || r.IP.To4() == nil {
			t.Fatalf("pod IP %v is not in %s", r.IP, subnet)
		}
	}
	if ra.IP.Equal(rb.IP) {
		t.Fatalf("both pods got %s", ra.IP)
	}

	// Exactly one host-side veth per pod, both on the bridge.
	va, vb := hostVeth(t, ra, f.opts.Bridge), hostVeth(t, rb, f.opts.Bridge)
	ports := f.bridgePorts()
	if len(ports) != 2 || !contains(ports, va) || !contains(ports, vb) {
		t.Fatalf("bridge %s ports = %v, want [%s %s]", f.opts.Bridge, ports, va, vb)
	}
	if l := f.leases(); len(l) != 2 || !contains(l, ra.IP.String()) || !contains(l, rb.IP.String()) {
		t.Fatalf("leases = %v, want the two pod IPs", l)
	}

	// lo is up inside the pod (the loopback network ran).
	var loUp bool
	if err := a.ns.Do(func() error {
		lo, err := net.InterfaceByName("lo")
		loUp = err == nil && lo.Flags&net.FlagUp != 0
		return err
	}); err != nil || !loUp {
		t.Fatalf("lo in the pod is not up (%v)", err)
	}

	// The host reaches a listener in pod A on its IP.
	portA := echoIn(t, a, 0)
	got, err := talk(dialFromHost(net.JoinHostPort(ra.IP.String(), fmt.Sprint(portA))))
	if err != nil || got != "hello from pod1: ping\n" {
		t.Fatalf("host -> pod A: %q, %v", got, err)
	}
	// Pod B reaches pod A over the bridge.
	got, err = talk(func() (c net.Conn, err error) {
		err = b.ns.Do(func() error {
			c, err = net.DialTimeout("tcp", net.JoinHostPort(ra.IP.String(), fmt.Sprint(portA)), 10*time.Second)
			return err
		})
		return c, err
	})
	if err != nil || got != "hello from pod1: ping\n" {
		t.Fatalf("pod B -> pod A: %q, %v", got, err)
	}

	// Teardown releases the IP and the veth; twice is fine.
	f.teardown(a)
	f.teardown(a)
	if l := f.leases(); contains(l, ra.IP.String()) || !contains(l, rb.IP.String()) {
		t.Fatalf("after teardown of A leases = %v, want only %s", l, rb.IP)
	}
	if ports := f.bridgePorts(); len(ports) != 1 || ports[0] != vb {
		t.Fatalf("after teardown of A bridge ports = %v, want [%s]", ports, vb)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", va)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("host veth %s of A still exists", va)
	}
	if r, err := f.net.Cached(a.Pod); err != nil || r != nil {
		t.Fatalf("Cached(A) after teardown = %v, %v; want nothing", r, err)
	}
	if r, err := f.net.Cached(b.Pod); err != nil || r == nil || !r.IP.Equal(rb.IP) {
		t.Fatalf("Cached(B) = %v, %v; want IP %s", r, err, rb.IP)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestHostPortOnLoopback(t *testing.T) {
	f := newFixture(t)
	hostPort := freePort(t)
	p := f.newPod(PortMapping{HostPort: int32(hostPort), ContainerPort: 8080, Protocol: "TCP", HostIP: "127.0.0.1"})
	f.setup(p)
	echoIn(t, p, 8080)

	got, err := talk(dialFromHost(fmt.Sprintf("127.0.0.1:%d", hostPort)))
	if err != nil || got != "hello from pod1: ping\n" {
		t.Fatalf("127.0.0.1:%d -> pod:8080 = %q, %v", hostPort, got, err)
	}

	// After teardown, the port no longer leads to the pod: the DNAT rules
	// are gone (checked in cleanup) and nothing answers.
	f.teardown(p)
	if got, err := talk(dialFromHost(fmt.Sprintf("127.0.0.1:%d", hostPort))); err == nil && strings.Contains(got, "hello") {
		t.Fatalf("hostPort still answers after teardown: %q", got)
	}
}

// A restarted daemon knows nothing but the sandbox ID and the netns path:
// the port mappings come from libcni's cache.
func TestTeardownAfterRestartUsesCache(t *testing.T) {
	f := newFixture(t)
	hostPort := freePort(t)
	p := f.newPod(PortMapping{HostPort: int32(hostPort), ContainerPort: 80, HostIP: "127.0.0.1"})
	r := f.setup(p)

	restarted, err := New(f.opts)
	if err != nil {
		t.Fatal(err)
	}
	bare := Pod{ID: p.ID}
	cached, err := restarted.Cached(bare)
	if err != nil || cached == nil || !cached.IP.Equal(r.IP) {
		t.Fatalf("Cached after restart = %+v, %v; want IP %s", cached, err, r.IP)
	}
	if err := restarted.Teardown(context.Background(), bare); err != nil {
		t.Fatalf("Teardown after restart: %v", err)
	}
	if l := f.leases(); len(l) != 0 {
		t.Fatalf("leases after teardown = %v", l)
	}
	// The netns path came from the cache too: the pod's eth0 is gone.
	if ports := f.bridgePorts(); len(ports) != 0 {
		t.Fatalf("veth still on the bridge after teardown: %v", ports)
	}
	for _, line := range iptablesSave(t) {
		if f.ours(line) && !strings.HasPrefix(line, ":") {
			t.Fatalf("rule left after teardown from cache: %s", line)
		}
	}
}

// The netns may be gone before the network is torn down (a crash, a reboot,
// a manual cleanup): teardown still releases everything.
func TestTeardownWhenNetnsIsGone(t *testing.T) {
	f := newFixture(t)
	for _, mode := range []string{"removed", "stale file"} {
		t.Run(mode, func(t *testing.T) {
			p := f.newPod(PortMapping{HostPort: int32(freePort(t)), ContainerPort: 80, HostIP: "127.0.0.1"})
			r := f.setup(p)
			if err := p.ns.Remove(); err != nil {
				t.Fatal(err)
			}
			if mode == "stale file" { // what a reboot leaves behind
				if err := os.WriteFile(p.NetNSPath, nil, 0o444); err != nil {
					t.Fatal(err)
				}
				defer os.Remove(p.NetNSPath)
			}
			if mode == "removed" {
				// A restarted daemon may know only the sandbox ID.
				p.NetNSPath, p.PortMappings = "", nil
			}
			f.teardown(p)
			f.teardown(p)
			if contains(f.leases(), r.IP.String()) {
				t.Fatalf("lease %s kept", r.IP)
			}
			for _, line := range iptablesSave(t) {
				if strings.Contains(line, p.ID) || strings.Contains(line, r.IP.String()+"/") || strings.Contains(line, r.IP.String()+":") {
					t.Fatalf("rule left after teardown: %s", line)
				}
			}
		})
	}
}

func TestSetupErrorsCarryPluginOutputAndCleanUp(t *testing.T) {
	f := newFixture(t)
	p := f.newPod()
	p.NetNSPath = filepath.Join(t.TempDir(), "no-such-netns")
	_, err := f.net.Setup(context.Background(), p.Pod)
	if err == nil {
		t.Fatal("Setup with a missing netns succeeded")
	}
	if !strings.Contains(err.Error(), "no-such-netns") || !strings.Contains(err.Error(), p.Name) {
		t.Fatalf("error does not say what failed: %v", err)
	}
	if l := f.leases(); len(l) != 0 {
		t.Fatalf("failed setup left leases %v", l)
	}
}

func TestManyCyclesLeaveNothing(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 20; i++ {
		p := f.newPod(PortMapping{HostPort: int32(freePort(t)), ContainerPort: 80, HostIP: "127.0.0.1"})
		f.setup(p)
		f.teardown(p)
		if err := p.ns.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	if ports := f.bridgePorts(); len(ports) != 0 {
		t.Fatalf("veths left on the bridge: %v", ports)
	}
	if l := f.leases(); len(l) != 0 {
		t.Fatalf("leases left: %v", l)
	}
	if entries, _ := os.ReadDir(f.nsDir); len(entries) != 0 {
		t.Fatalf("netns files left: %d", len(entries))
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), f.nsDir) {
		t.Fatalf("netns mounts left under %s", f.nsDir)
	}
	if left := f.iptablesLeftovers(); len(left) > 0 {
		t.Fatalf("iptables leftovers:\n%s", strings.Join(left, "\n"))
	}
}

func TestUserConfigWinsInLexicalOrder(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	confDir := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, netName string) {
		c := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[{"type":"loopback"}]}`, netName)
		if err := os.WriteFile(filepath.Join(confDir, name), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20-b.conflist", "b")
	write("05-a.conflist", "a")
	if err := os.WriteFile(filepath.Join(confDir, "01-broken.conflist"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{ConfDir: confDir, BinDirs: []string{pluginDir}, CacheDir: filepath.Join(dir, "cache"), Bridge: "unused0", Subnet: "10.99.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.ConfigFile(); filepath.Base(got) != "05-a.conflist" {
		t.Fatalf("config in use = %s, want 05-a.conflist (first valid in lexical order)", got)
	}
	if _, err := os.Stat(filepath.Join(confDir, DefaultConfFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("default config written although the conf dir had configs")
	}
}

func TestReadyReasons(t *testing.T) {
	requireTools(t)
	tests := []struct {
		name    string
		conf    string
		binDirs []string
		want    string
	}{
		{name: "plugin missing", conf: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"no-such-plugin"}]}`,
			binDirs: []string{pluginDir}, want: "no-such-plugin"},
		{name: "no bin dir has loopback", conf: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}`,
			binDirs: []string{"/nonexistent"}, want: "loopback"},
		{name: "only broken configs", conf: `{"name": 1}`, binDirs: []string{pluginDir}, want: "no usable network config"},
		{name: "ok", conf: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"},{"type":"portmap"}]}`,
			binDirs: []string{"/nonexistent", pluginDir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "50-x.conflist"), []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			n, err := New(Options{ConfDir: dir, BinDirs: tt.binDirs, CacheDir: t.TempDir(), Bridge: "unused0", Subnet: "10.99.0.0/24"})
			if err != nil {
				t.Fatal(err)
			}
			err = n.Ready()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Ready: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Ready = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// portmap's shared chains, and the jumps to them, that it creates on first
// use and never deletes (every pod's rules hang below them).
var hostportScaffolding = [][]string{
	{"-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
	{"-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
	{"-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
	{"-F", "CNI-HOSTPORT-DNAT"}, {"-X", "CNI-HOSTPORT-DNAT"},
	{"-F", "CNI-HOSTPORT-MASQ"}, {"-X", "CNI-HOSTPORT-MASQ"},
	{"-F", "CNI-HOSTPORT-SETMARK"}, {"-X", "CNI-HOSTPORT-SETMARK"},
}

func TestMain(m *testing.M) {
	save := func() string { out, _ := exec.Command("iptables-save", "-t", "nat").Output(); return string(out) }
	hadScaffolding := strings.Contains(save(), ":CNI-HOSTPORT-DNAT")
	code := m.Run()
	// Remove portmap's shared chains if these tests brought them, and no
	// pod (of this or any other test binary running now) still uses them.
	after := save()
	if !hadScaffolding && strings.Contains(after, ":CNI-HOSTPORT-DNAT") && !strings.Contains(after, "-A CNI-HOSTPORT-DNAT") {
		for _, args := range hostportScaffolding {
			if out, err := exec.Command("iptables", append([]string{"-t", "nat"}, args...)...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "remove portmap chains: iptables %s: %v: %s\n", strings.Join(args, " "), err, out)
				code = 1
			}
		}
	}
	os.Exit(code)
}

func TestSinglePluginConfFile(t *testing.T) {
	requireTools(t)
	dir := t.TempDir()
	conf := `{"cniVersion":"0.4.0","name":"old","type":"bridge","bridge":"x0","ipam":{"type":"host-local","subnet":"10.99.0.0/24"}}`
	if err := os.WriteFile(filepath.Join(dir, "10-old.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{ConfDir: dir, BinDirs: []string{pluginDir}, CacheDir: t.TempDir(), Bridge: "unused0", Subnet: "10.99.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := n.config()
	if err != nil {
		t.Fatal(err)
	}
	if list.Name != "old" || list.CNIVersion != "0.4.0" || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "bridge" {
		t.Fatalf("loaded %+v", list)
	}
	if !strings.Contains(string(list.Plugins[0].Bytes), `"bridge":"x0"`) {
		t.Fatalf("plugin config lost its fields: %s", list.Plugins[0].Bytes)
	}
}
