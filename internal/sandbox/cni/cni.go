// Package cni attaches pods to the node's pod network through the CNI
// library (libcni) and the plugin binaries installed on the host (Debian's
// containernetworking-plugins in /usr/lib/cni).
//
// The network config is the first file, in lexical order, of the conf dir,
// as kubelet and containerd choose it. When the conf dir holds none, peapod
// writes its own default, 10-peapod.conflist: a bridge with host-local IPAM
// (isGateway, ipMasq, hairpinMode) followed by portmap for hostPorts. The
// pod's lo is brought up by the loopback plugin run as a separate, built-in
// network (as containerd does), so that it is up with any user-supplied
// config too; it runs beside the main network, not before it.
//
// Teardown is written for the bad days: it uses the config and the port
// mappings that libcni cached when the pod was set up (so it works after a
// daemon restart and after the conf dir changed), and it copes with a
// network namespace that is already gone.
package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/peapod/peapod/internal/sandbox/netns"
)

const (
	// DefaultConfFile is the name of the config peapod writes into an empty
	// conf dir. The "10-" prefix sorts it before most hand-written configs
	// that an administrator may add later with a lower number to win.
	DefaultConfFile = "10-peapod.conflist"
	// DefaultNetworkName is the network name in the default config.
	DefaultNetworkName = "peapod"
	// DefaultIfName is the pod-side interface, as kubelet names it.
	DefaultIfName = "eth0"

	loopbackName = "peapod-loopback"
	// specVersion is the newest CNI spec version Debian's plugins (1.1.1)
	// speak.
	specVersion = "1.0.0"
)

// Options configure the pod network.
type Options struct {
	// ConfDir holds the network configs (*.conflist, *.conf, *.json).
	ConfDir string
	// BinDirs are searched, in order, for plugin binaries.
	BinDirs []string
	// CacheDir is libcni's cache of what each pod was set up with (results,
	// config, port mappings). It must survive a daemon restart (under ROOT).
	CacheDir string
	// Bridge and Subnet are used only for the default config.
	Bridge string
	Subnet string
	// IPAMDataDir is host-local's lease directory in the default config
	// (under ROOT).
	IPAMDataDir string
}

// PortMapping is a hostPort: traffic to HostIP:HostPort (all host addresses
// when HostIP is empty) goes to ContainerPort on the pod IP.
type PortMapping struct {
	HostPort      int32
	ContainerPort int32
	// Protocol is TCP, UDP or SCTP in any case; empty means TCP.
	Protocol string
	HostIP   string
}

// Pod identifies one pod's attachment. ID is the sandbox ID: the CNI
// container ID, the key of every cached entry.
type Pod struct {
	ID        string
	Name      string
	Namespace string
	UID       string
	// NetNSPath is the pod's pinned network namespace.
	NetNSPath    string
	PortMappings []PortMapping
}

// Interface is one interface a plugin reported.
type Interface struct {
	Name string
	MAC  string
	// Sandbox is the netns path for interfaces inside the pod, empty for
	// host-side ones (the bridge, the host end of the veth).
	Sandbox string
}

// Result is what the pod got from the network.
type Result struct {
	// IP is the pod IP: the first IPv4 address of the pod's interface, else
	// its first IPv6 address.
	IP net.IP
	// IPs are all addresses of the pod's interface, IP first.
	IPs        []net.IP
	Interfaces []Interface
}

// Network is the pod network. It is safe for concurrent use.
type Network struct {
	opts     Options
	loopback *libcni.NetworkConfigList

	mu   sync.Mutex
	list *libcni.NetworkConfigList
	file string
}

// New prepares the pod network. It writes the default config when ConfDir
// holds none; a config that cannot be loaded is not an error here but is
// reported by Ready and Setup, so the daemon can start and say why pods
// cannot (as the CRI NetworkReady condition does).
func New(opts Options) (*Network, error) {
	if opts.ConfDir == "" || len(opts.BinDirs) == 0 || opts.CacheDir == "" {
		return nil, errors.New("cni: ConfDir, BinDirs and CacheDir are required")
	}
	lo, err := libcni.NetworkConfFromBytes([]byte(fmt.Sprintf(
		`{"cniVersion": %q, "name": %q, "plugins": [{"type": "loopback"}]}`, specVersion, loopbackName)))
	if err != nil {
		return nil, fmt.Errorf("cni: loopback config: %w", err)
	}
	n := &Network{opts: opts, loopback: lo}
	files, err := confFiles(opts.ConfDir)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		if err := writeDefault(opts); err != nil {
			return nil, err
		}
	}
	if _, err := n.config(); err != nil {
		slog.Warn("pod network config not usable yet", "confDir", opts.ConfDir, "err", err)
	}
	return n, nil
}

// DefaultConfig returns the default conflist for a bridge, a subnet and a
// host-local lease directory.
func DefaultConfig(bridge, subnet, ipamDataDir string) ([]byte, error) {
	if bridge == "" || len(bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q must be 1 to 15 characters", bridge)
	}
	if _, _, err := net.ParseCIDR(subnet); err != nil {
		return nil, fmt.Errorf("subnet %q: %w", subnet, err)
	}
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  [][]map[string]string{{{"subnet": subnet}}},
		"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
		"dataDir": ipamDataDir,
	}
	if ipamDataDir == "" {
		delete(ipam, "dataDir")
	}
	conf := map[string]any{
		"cniVersion": specVersion,
		"name":       DefaultNetworkName,
		"plugins": []map[string]any{
			{
				"type":        "bridge",
				"bridge":      bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam":        ipam,
			},
			{
				"type":         "portmap",
				"capabilities": map[string]bool{"portMappings": true},
			},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func writeDefault(opts Options) error {
	b, err := DefaultConfig(opts.Bridge, opts.Subnet, opts.IPAMDataDir)
	if err != nil {
		return fmt.Errorf("cni: default config: %w", err)
	}
	if err := os.MkdirAll(opts.ConfDir, 0o755); err != nil {
		return fmt.Errorf("cni: create conf dir: %w", err)
	}
	// Written aside and renamed, so a concurrent reader never sees half.
	tmp, err := os.CreateTemp(opts.ConfDir, ".peapod-*.tmp")
	if err != nil {
		return fmt.Errorf("cni: write default config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("cni: write default config: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("cni: write default config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cni: write default config: %w", err)
	}
	dst := filepath.Join(opts.ConfDir, DefaultConfFile)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("cni: write default config %s: %w", dst, err)
	}
	slog.Info("wrote default pod network config", "file", dst, "bridge", opts.Bridge, "subnet", opts.Subnet)
	return nil
}

func confFiles(dir string) ([]string, error) {
	files, err := libcni.ConfFiles(dir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, fmt.Errorf("cni: list conf dir %s: %w", dir, err)
	}
	// ConfFiles lists in directory order, which ReadDir sorts by name.
	return files, nil
}

// config loads the network config on first use and keeps it; until a
// usable config is found, every call looks again, so fixing the conf dir
// needs no restart.
func (n *Network) config() (*libcni.NetworkConfigList, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.list != nil {
		return n.list, nil
	}
	files, err := confFiles(n.opts.ConfDir)
	if err != nil {
		return nil, err
	}
	var problems []error
	for _, f := range files {
		list, err := loadFile(f)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		n.list, n.file = list, f
		return list, nil
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("cni: no network config in %s", n.opts.ConfDir)
	}
	return nil, fmt.Errorf("cni: no usable network config in %s: %w", n.opts.ConfDir, errors.Join(problems...))
}

func loadFile(file string) (*libcni.NetworkConfigList, error) {
	var (
		list *libcni.NetworkConfigList
		err  error
	)
	if strings.HasSuffix(file, ".conflist") {
		list, err = libcni.NetworkConfFromFile(file)
	} else {
		list, err = singlePluginList(file)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	if len(list.Plugins) == 0 {
		return nil, fmt.Errorf("load %s: no plugins", file)
	}
	return list, nil
}

// singlePluginList reads an old-style .conf/.json file, one plugin with its
// network name and version, as a list of that one plugin.
func singlePluginList(file string) (*libcni.NetworkConfigList, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	conf, err := libcni.NetworkPluginConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	lb, err := json.Marshal(map[string]any{
		"name":       conf.Network.Name,
		"cniVersion": conf.Network.CNIVersion,
		"plugins":    []any{raw},
	})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(lb)
}

// ConfigFile is the config file in use, or "" while none is usable.
func (n *Network) ConfigFile() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.file
}

// Ready reports why pods cannot be networked: no usable config, or a plugin
// binary missing from BinDirs. Nil means ready.
func (n *Network) Ready() error {
	list, err := n.config()
	if err != nil {
		return err
	}
	var missing []string
	for _, l := range []*libcni.NetworkConfigList{n.loopback, list} {
		for _, p := range l.Plugins {
			if _, err := invoke.FindInPath(p.Network.Type, n.opts.BinDirs); err != nil {
				missing = append(missing, p.Network.Type)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("cni: plugin(s) %s of network %q not found in %s",
			strings.Join(missing, ", "), list.Name, strings.Join(n.opts.BinDirs, ":"))
	}
	return nil
}

// capabilityPortMapping is the portMappings capability entry of the CNI
// conventions, what portmap reads from runtimeConfig.
type capabilityPortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func runtimeConf(p Pod, ifName, netnsPath string) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: p.ID,
		NetNS:       netnsPath,
		IfName:      ifName,
		// The keys kubelet passes; IgnoreUnknown keeps plugins that do not
		// know them from failing.
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
			{"K8S_POD_UID", p.UID},
		},
	}
	var pms []capabilityPortMapping
	for _, pm := range p.PortMappings {
		if pm.HostPort <= 0 {
			continue // no hostPort: nothing for portmap to do, as in kubelet
		}
		proto := strings.ToLower(pm.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		pms = append(pms, capabilityPortMapping{
			HostPort: pm.HostPort, ContainerPort: pm.ContainerPort, Protocol: proto, HostIP: pm.HostIP,
		})
	}
	if len(pms) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": pms}
	}
	return rt
}

// client returns a libcni client whose plugins' stderr lands in buf, so
// errors can carry what the plugin said.
func (n *Network) client(buf *bytes.Buffer) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(n.opts.BinDirs, n.opts.CacheDir, &execer{&invoke.RawExec{Stderr: buf}, version.PluginDecoder{}})
}

// execer is libcni's default plugin runner with stderr captured.
type execer struct {
	*invoke.RawExec
	version.PluginDecoder
}

func withOutput(err error, buf *bytes.Buffer) error {
	if out := strings.TrimSpace(buf.String()); out != "" {
		return fmt.Errorf("%w (plugin stderr: %s)", err, out)
	}
	return err
}

func podRef(p Pod) string {
	return fmt.Sprintf("pod %s/%s (sandbox %s)", p.Namespace, p.Name, p.ID)
}

// Setup attaches the pod's network namespace to the network: lo up and, at
// the same time, the configured network on eth0 with the pod's hostPorts. On failure what was
// set up is torn down again.
func (n *Network) Setup(ctx context.Context, p Pod) (*Result, error) {
	if p.ID == "" || p.NetNSPath == "" {
		return nil, fmt.Errorf("cni setup %s: sandbox ID and netns path are required", podRef(p))
	}
	list, err := n.config()
	if err != nil {
		return nil, fmt.Errorf("cni setup %s: %w", podRef(p), err)
	}
	var buf bytes.Buffer
	c := n.client(&buf)
	fail := func(err error) (*Result, error) {
		err = withOutput(err, &buf)
		// The caller's context may be what failed; cleanup still runs.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if terr := n.Teardown(tctx, p); terr != nil {
			slog.Warn("cni cleanup after failed setup", "pod", podRef(p), "err", terr)
		}
		return nil, err
	}
	// lo and eth0 do not depend on each other: bring lo up while the
	// configured chain runs (one plugin process off the pod start's path).
	// Each has its own client, so plugin stderr buffers are not shared.
	var loBuf bytes.Buffer
	loDone := make(chan error, 1)
	go func() {
		_, err := n.client(&loBuf).AddNetworkList(ctx, n.loopback, runtimeConf(p, "lo", p.NetNSPath))
		loDone <- err
	}()
	res, err := c.AddNetworkList(ctx, list, runtimeConf(p, DefaultIfName, p.NetNSPath))
	if loErr := <-loDone; loErr != nil {
		if err == nil {
			return fail(fmt.Errorf("cni setup %s: network %q: %w", podRef(p), loopbackName, withOutput(loErr, &loBuf)))
		}
		slog.Warn("cni loopback setup", "pod", podRef(p), "err", withOutput(loErr, &loBuf))
	}
	if err != nil {
		return fail(fmt.Errorf("cni setup %s: network %q: %w", podRef(p), list.Name, err))
	}
	r, err := convert(res)
	if err != nil {
		return fail(fmt.Errorf("cni setup %s: network %q: %w", podRef(p), list.Name, err))
	}
	if r.IP == nil {
		return fail(fmt.Errorf("cni setup %s: network %q gave the pod no IP address", podRef(p), list.Name))
	}
	return r, nil
}

// Cached returns the result of the pod's Setup as libcni cached it, for a
// restarted daemon that needs the pod IP again. It returns (nil, nil) when
// nothing is cached.
func (n *Network) Cached(p Pod) (*Result, error) {
	var buf bytes.Buffer
	c := n.client(&buf)
	rt := runtimeConf(p, DefaultIfName, p.NetNSPath)
	for _, a := range n.attachments(c, p.ID) {
		if a.IfName != DefaultIfName || a.Network == loopbackName {
			continue
		}
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil {
			return nil, fmt.Errorf("cni cached result of %s: %w", podRef(p), err)
		}
		res, err := c.GetNetworkListCachedResult(list, rt)
		if err != nil {
			return nil, fmt.Errorf("cni cached result of %s: %w", podRef(p), err)
		}
		if res == nil {
			continue
		}
		return convert(res)
	}
	return nil, nil
}

func (n *Network) attachments(c *libcni.CNIConfig, id string) []*libcni.NetworkAttachment {
	as, err := c.GetCachedAttachments(id)
	if err != nil {
		slog.Warn("read cni cache", "dir", n.opts.CacheDir, "sandbox", id, "err", err)
	}
	return as
}

// Teardown detaches the pod from the network and releases its IP and
// hostPorts. It is idempotent, works after a daemon restart (from libcni's
// cache, which records the config, netns path and port mappings used at
// setup, so p.ID alone is enough) and when the network namespace is
// already gone.
func (n *Network) Teardown(ctx context.Context, p Pod) error {
	if p.ID == "" {
		return fmt.Errorf("cni teardown %s: sandbox ID is required", podRef(p))
	}
	var buf bytes.Buffer
	c := n.client(&buf)
	attachments := n.attachments(c, p.ID)
	nsPath := p.NetNSPath
	if nsPath == "" {
		for _, a := range attachments {
			if a.NetNS != "" {
				nsPath = a.NetNS // as recorded at setup
				break
			}
		}
	}
	if nsPath != "" && !netns.IsPinned(nsPath) {
		// Plugins fail on a path that is not a namespace (a leftover file
		// after a reboot); an empty CNI_NETNS is how DEL says "gone".
		nsPath = ""
	}

	type job struct {
		list *libcni.NetworkConfigList
		rt   *libcni.RuntimeConf
	}
	var jobs []job
	cachedNets := map[string]bool{}
	// What was set up, from the cache: config and runtime args as they were.
	for _, a := range attachments {
		list, err := libcni.NetworkConfFromBytes(a.Config)
		if err != nil || list.Name != a.Network {
			slog.Warn("unusable cni cache entry", "sandbox", p.ID, "network", a.Network, "err", err)
			continue
		}
		rt := &libcni.RuntimeConf{
			ContainerID: p.ID, NetNS: nsPath, IfName: a.IfName,
			Args: a.CniArgs, CapabilityArgs: a.CapabilityArgs,
		}
		cachedNets[a.Network] = true
		if nsPath == "" && a.IfName != "lo" {
			if stand := n.standIn(ctx, c, list, rt); stand != nil {
				defer stand.Remove()
				rt.NetNS = stand.Path()
			}
		}
		jobs = append(jobs, job{list, rt})
	}
	// Nothing cached (already torn down, or setup died half way): run DEL
	// with today's config, which plugins treat as a no-op when there is
	// nothing left.
	if !cachedOther(cachedNets) {
		if list, err := n.config(); err == nil {
			jobs = append(jobs, job{list, runtimeConf(p, DefaultIfName, nsPath)})
		} else {
			// Without a cache entry the pod holds nothing of this network
			// (libcni caches every successful ADD), so removal goes on.
			slog.Warn("cni teardown without cache or usable config", "pod", podRef(p), "err", err)
		}
	}
	if !cachedNets[loopbackName] {
		jobs = append(jobs, job{n.loopback, runtimeConf(p, "lo", nsPath)})
	}

	var errs []error
	for _, j := range jobs {
		buf.Reset()
		if err := c.DelNetworkList(ctx, j.list, j.rt); err != nil {
			errs = append(errs, withOutput(fmt.Errorf("network %q: %w", j.list.Name, err), &buf))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cni teardown %s: %w", podRef(p), err)
	}
	return nil
}

// standIn returns a throwaway network namespace holding an interface named
// like the pod's, with the addresses the pod had, or nil.
//
// When the pod's namespace is gone, the bridge plugin releases the IP but
// cannot undo its ipMasq rules: it learns which addresses to un-masquerade
// from the interface it deletes inside the namespace. Showing it a stand-in
// interface with the cached addresses lets the plugin itself clean up,
// instead of us re-deriving its chain names.
func (n *Network) standIn(ctx context.Context, c *libcni.CNIConfig, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *netns.NS {
	res, err := c.GetNetworkListCachedResult(list, rt)
	if err != nil || res == nil {
		return nil
	}
	r100, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil
	}
	var addrs []string
	for _, ipc := range r100.IPs {
		if ipc.Interface != nil {
			idx := *ipc.Interface
			if idx < 0 || idx >= len(r100.Interfaces) || r100.Interfaces[idx].Sandbox == "" {
				continue
			}
		}
		addrs = append(addrs, ipc.Address.String())
	}
	if len(addrs) == 0 {
		return nil
	}
	ns, err := netns.New(filepath.Join(n.opts.CacheDir, "teardown-netns"))
	if err != nil {
		slog.Warn("cni teardown: stand-in netns", "sandbox", rt.ContainerID, "err", err)
		return nil
	}
	err = ns.Do(func() error {
		// Commands started from this locked thread run in the namespace.
		cmds := [][]string{{"link", "add", rt.IfName, "type", "veth", "peer", "name", "standin0"}}
		for _, a := range addrs {
			cmds = append(cmds, []string{"addr", "add", a, "dev", rt.IfName})
		}
		for _, args := range cmds {
			if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
			}
		}
		return nil
	})
	if err != nil {
		slog.Warn("cni teardown: stand-in interface", "sandbox", rt.ContainerID, "err", err)
		ns.Remove()
		return nil
	}
	return ns
}

func cachedOther(m map[string]bool) bool {
	for k := range m {
		if k != loopbackName {
			return true
		}
	}
	return false
}

func convert(res types.Result) (*Result, error) {
	r100, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert CNI result: %w", err)
	}
	r := &Result{}
	for _, i := range r100.Interfaces {
		r.Interfaces = append(r.Interfaces, Interface{Name: i.Name, MAC: i.Mac, Sandbox: i.Sandbox})
	}
	var v4, v6 []net.IP
	for _, ipc := range r100.IPs {
		// Only addresses on the pod's side count; an IP config without an
		// interface index is taken as the pod's.
		if ipc.Interface != nil {
			idx := *ipc.Interface
			if idx < 0 || idx >= len(r100.Interfaces) || r100.Interfaces[idx].Sandbox == "" {
				continue
			}
		}
		if ip4 := ipc.Address.IP.To4(); ip4 != nil {
			v4 = append(v4, ip4)
		} else {
			v6 = append(v6, ipc.Address.IP)
		}
	}
	r.IPs = append(v4, v6...)
	if len(r.IPs) > 0 {
		r.IP = r.IPs[0]
	}
	return r, nil
}
