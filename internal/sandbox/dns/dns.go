// Package dns writes a pod's name-resolution files: /etc/resolv.conf,
// /etc/hosts and /etc/hostname. They are written once per sandbox into its
// directory and bind-mounted into every container of the pod, so all
// containers see the same files, as with kubelet's etc-hosts.
//
// resolv.conf follows the CRI runtimes: the DNSConfig the caller (kubelet)
// sends, or else the host's resolv.conf. A host resolv.conf that points at a
// local stub resolver (systemd-resolved's 127.0.0.53, a dnsmasq on
// 127.0.0.1) is useless inside a pod's network namespace, where 127/8 is the
// pod's own loopback; the upstream servers in systemd-resolved's
// /run/systemd/resolve/resolv.conf are used instead, which is what kubelet
// is pointed at on such hosts.
//
// hosts follows kubelet's managed hosts file; a hostNetwork pod gets the
// host's /etc/hosts.
package dns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Default host paths.
const (
	HostResolvConf     = "/etc/resolv.conf"
	UpstreamResolvConf = "/run/systemd/resolve/resolv.conf"
	HostHosts          = "/etc/hosts"
)

// File names inside the sandbox directory.
const (
	ResolvConfFile = "resolv.conf"
	HostsFile      = "hosts"
	HostnameFile   = "hostname"
)

// HostAlias adds hostnames for an IP to the pod's hosts file (the pod spec's
// hostAliases).
type HostAlias struct {
	IP        string
	Hostnames []string
}

// Config describes one pod.
type Config struct {
	// Dir is the sandbox directory the files are written into.
	Dir string
	// Hostname is the pod's hostname (the pod name, or spec.hostname). For
	// a hostNetwork pod, empty means the host's hostname.
	Hostname string
	// Domain, when set, makes the hosts entry "<ip> <hostname>.<domain>
	// <hostname>" (spec.subdomain.<namespace>.svc.<cluster domain>).
	Domain string
	// PodIPs are the pod's addresses; each gets a hosts entry.
	PodIPs      []string
	HostAliases []HostAlias
	HostNetwork bool
	// DNS is the CRI DNSConfig; nil or empty means the host's resolv.conf.
	DNS *runtimeapi.DNSConfig

	// Host files; empty means the defaults above. Tests point them at
	// fixtures.
	HostResolvConf     string
	UpstreamResolvConf string
	HostHosts          string
}

// Files are the paths written, to be bind-mounted at /etc/resolv.conf,
// /etc/hosts and /etc/hostname.
type Files struct {
	ResolvConf string
	Hosts      string
	Hostname   string
}

// Write writes the three files into c.Dir (created if missing), each
// atomically. Containers bind-mount the files, which pins their inode, so
// they are written before the first container starts and not replaced while
// any runs.
func Write(c Config) (Files, error) {
	c = withDefaults(c)
	resolv, err := ResolvConf(c.DNS, c.HostResolvConf, c.UpstreamResolvConf)
	if err != nil {
		return Files{}, err
	}
	hostname := c.Hostname
	if hostname == "" && c.HostNetwork {
		if hostname, err = os.Hostname(); err != nil {
			return Files{}, fmt.Errorf("read host name: %w", err)
		}
	}
	if hostname == "" {
		return Files{}, errors.New("write pod dns files: a hostname is required")
	}
	var hosts []byte
	if c.HostNetwork {
		if hosts, err = HostNetworkHosts(c.HostHosts, c.HostAliases); err != nil {
			return Files{}, err
		}
	} else {
		hosts = ManagedHosts(hostname, c.Domain, c.PodIPs, c.HostAliases)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("create sandbox dir %s: %w", c.Dir, err)
	}
	f := Files{
		ResolvConf: filepath.Join(c.Dir, ResolvConfFile),
		Hosts:      filepath.Join(c.Dir, HostsFile),
		Hostname:   filepath.Join(c.Dir, HostnameFile),
	}
	for path, data := range map[string][]byte{
		f.ResolvConf: resolv,
		f.Hosts:      hosts,
		f.Hostname:   []byte(hostname + "\n"),
	} {
		if err := writeFile(path, data); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

func withDefaults(c Config) Config {
	if c.HostResolvConf == "" {
		c.HostResolvConf = HostResolvConf
	}
	if c.UpstreamResolvConf == "" {
		c.UpstreamResolvConf = UpstreamResolvConf
	}
	if c.HostHosts == "" {
		c.HostHosts = HostHosts
	}
	return c
}

func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ResolvConf returns the pod's resolv.conf: built from dns when it has any
// server, search or option, otherwise the host's file at hostPath, or the
// file at upstreamPath when the host's names a loopback nameserver.
func ResolvConf(dns *runtimeapi.DNSConfig, hostPath, upstreamPath string) ([]byte, error) {
	if dns != nil && (len(dns.Servers) > 0 || len(dns.Searches) > 0 || len(dns.Options) > 0) {
		var b bytes.Buffer
		if len(dns.Searches) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(dns.Searches, " "))
		}
		for _, s := range dns.Servers {
			fmt.Fprintf(&b, "nameserver %s\n", s)
		}
		if len(dns.Options) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(dns.Options, " "))
		}
		return b.Bytes(), nil
	}
	host, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("read host resolv.conf: %w", err)
	}
	if !pointsAtLocalStub(host) {
		return host, nil
	}
	upstream, err := os.ReadFile(upstreamPath)
	if err == nil {
		return upstream, nil
	}
	// A loopback resolver without systemd-resolved's upstream file (a
	// dnsmasq, say): keep the rest of the host's file; the loopback servers
	// would only be the pod's own lo.
	slog.Warn("host resolv.conf names a loopback nameserver and no upstream file is readable; pods get the other servers only",
		"host", hostPath, "upstream", upstreamPath, "err", err)
	return dropLoopbackServers(host), nil
}

func nameserver(line string) (net.IP, bool) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "nameserver" {
		return nil, false
	}
	// An IPv6 server may carry a zone ("fe80::1%eth0").
	ip := net.ParseIP(strings.SplitN(f[1], "%", 2)[0])
	return ip, ip != nil
}

func pointsAtLocalStub(conf []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		if ip, ok := nameserver(sc.Text()); ok && ip.IsLoopback() {
			return true
		}
	}
	return false
}

func dropLoopbackServers(conf []byte) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		if ip, ok := nameserver(sc.Text()); ok && ip.IsLoopback() {
			continue
		}
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ManagedHosts returns kubelet's managed hosts file for a pod in its own
// network namespace.
func ManagedHosts(hostname, domain string, podIPs []string, aliases []HostAlias) []byte {
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("fe00::0\tip6-mcastprefix\n")
	b.WriteString("fe00::1\tip6-allnodes\n")
	b.WriteString("fe00::2\tip6-allrouters\n")
	for _, ip := range podIPs {
		if ip == "" {
			continue
		}
		if domain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s\t%s\n", ip, hostname, domain, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
		}
	}
	writeAliases(&b, aliases)
	return b.Bytes()
}

// HostNetworkHosts returns the hosts file of a hostNetwork pod: the host's,
// plus the pod's aliases.
func HostNetworkHosts(hostPath string, aliases []HostAlias) ([]byte, error) {
	host, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("read host hosts file: %w", err)
	}
	var b bytes.Buffer
	b.WriteString("# Kubernetes-managed hosts file (host network).\n")
	b.Write(host)
	if len(host) > 0 && host[len(host)-1] != '\n' {
		b.WriteByte('\n')
	}
	writeAliases(&b, aliases)
	return b.Bytes(), nil
}

func writeAliases(b *bytes.Buffer, aliases []HostAlias) {
	if len(aliases) == 0 {
		return
	}
	b.WriteString("\n# Entries added by HostAliases.\n")
	for _, a := range aliases {
		fmt.Fprintf(b, "%s\t%s\n", a.IP, strings.Join(a.Hostnames, "\t"))
	}
}
