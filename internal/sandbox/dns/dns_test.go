package dns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func fixture(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const upstreamConf = "# systemd-resolved upstream\nnameserver 192.0.2.10\nnameserver 192.0.2.11\nsearch corp.example\n"

func TestResolvConf(t *testing.T) {
	tests := []struct {
		name     string
		dns      *runtimeapi.DNSConfig
		host     string // content of the host's resolv.conf
		upstream *string
		want     string
	}{
		{
			name: "CRI DNSConfig from kubelet (ClusterFirst)",
			dns: &runtimeapi.DNSConfig{
				Servers:  []string{"10.96.0.10"},
				Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
				Options:  []string{"ndots:5"},
			},
			host: "nameserver 192.0.2.1\n",
			want: "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
		},
		{
			name: "several servers, no search",
			dns:  &runtimeapi.DNSConfig{Servers: []string{"192.0.2.1", "2001:db8::1"}},
			host: "nameserver 192.0.2.99\n",
			want: "nameserver 192.0.2.1\nnameserver 2001:db8::1\n",
		},
		{
			name: "options only still overrides the host",
			dns:  &runtimeapi.DNSConfig{Options: []string{"ndots:2", "edns0"}},
			host: "nameserver 192.0.2.99\n",
			want: "options ndots:2 edns0\n",
		},
		{
			name: "no DNSConfig: host file verbatim",
			host: "# host\nnameserver 192.0.2.1\nsearch example.org\n",
			want: "# host\nnameserver 192.0.2.1\nsearch example.org\n",
		},
		{
			name: "empty DNSConfig counts as none",
			dns:  &runtimeapi.DNSConfig{},
			host: "nameserver 192.0.2.1\n",
			want: "nameserver 192.0.2.1\n",
		},
		{
			name:     "systemd-resolved stub: upstream servers instead",
			host:     "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
			upstream: ptr(upstreamConf),
			want:     upstreamConf,
		},
		{
			name:     "any loopback server counts as a local stub",
			host:     "nameserver 192.0.2.1\nnameserver 127.0.0.1\n",
			upstream: ptr(upstreamConf),
			want:     upstreamConf,
		},
		{
			name:     "IPv6 loopback stub",
			host:     "nameserver ::1\n",
			upstream: ptr(upstreamConf),
			want:     upstreamConf,
		},
		{
			name: "stub without upstream file: loopback servers dropped",
			host: "nameserver 127.0.0.1\nnameserver 192.0.2.1\nsearch example.org\n",
			want: "nameserver 192.0.2.1\nsearch example.org\n",
		},
		{
			name:     "non-loopback host servers: upstream file ignored",
			host:     "nameserver 10.255.255.53\n",
			upstream: ptr(upstreamConf),
			want:     "nameserver 10.255.255.53\n",
		},
		{
			name:     "a 127 address that is not a nameserver line does not count",
			host:     "# was nameserver 127.0.0.53\nnameserver 192.0.2.1\n",
			upstream: ptr(upstreamConf),
			want:     "# was nameserver 127.0.0.53\nnameserver 192.0.2.1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := fixture(t, "resolv.conf", tt.host)
			upstream := filepath.Join(t.TempDir(), "absent")
			if tt.upstream != nil {
				upstream = fixture(t, "upstream.conf", *tt.upstream)
			}
			got, err := ResolvConf(tt.dns, host, upstream)
			if err != nil {
				t.Fatalf("ResolvConf: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestResolvConfMissingHostFile(t *testing.T) {
	_, err := ResolvConf(nil, filepath.Join(t.TempDir(), "nope"), "")
	if err == nil || !strings.Contains(err.Error(), "host resolv.conf") {
		t.Fatalf("err = %v, want it to name the host resolv.conf", err)
	}
}

const kubeletPreamble = "# Kubernetes-managed hosts file.\n" +
	"127.0.0.1\tlocalhost\n" +
	"::1\tlocalhost ip6-localhost ip6-loopback\n" +
	"fe00::0\tip6-localnet\n" +
	"fe00::0\tip6-mcastprefix\n" +
	"fe00::1\tip6-allnodes\n" +
	"fe00::2\tip6-allrouters\n"

func TestManagedHosts(t *testing.T) {
	tests := []struct {
		name     string
		hostname string
		domain   string
		ips      []string
		aliases  []HostAlias
		want     string
	}{
		{name: "no IP yet", hostname: "web", want: kubeletPreamble},
		{name: "pod IP", hostname: "web", ips: []string{"10.85.0.7"}, want: kubeletPreamble + "10.85.0.7\tweb\n"},
		{name: "dual stack", hostname: "web", ips: []string{"10.85.0.7", "fd00::7"},
			want: kubeletPreamble + "10.85.0.7\tweb\nfd00::7\tweb\n"},
		{name: "subdomain gives an FQDN", hostname: "web-0", domain: "nginx.default.svc.cluster.local", ips: []string{"10.85.0.7"},
			want: kubeletPreamble + "10.85.0.7\tweb-0.nginx.default.svc.cluster.local\tweb-0\n"},
		{name: "host aliases", hostname: "web", ips: []string{"10.85.0.7"},
			aliases: []HostAlias{{IP: "192.0.2.5", Hostnames: []string{"foo.local", "bar.local"}}},
			want:    kubeletPreamble + "10.85.0.7\tweb\n\n# Entries added by HostAliases.\n192.0.2.5\tfoo.local\tbar.local\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(ManagedHosts(tt.hostname, tt.domain, tt.ips, tt.aliases)); got != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	hostResolv := fixture(t, "resolv.conf", "nameserver 127.0.0.53\n")
	upstream := fixture(t, "upstream", upstreamConf)
	hostHosts := fixture(t, "hosts", "127.0.0.1 localhost\n192.0.2.3 node1")
	tests := []struct {
		name         string
		cfg          Config
		wantResolv   string
		wantHosts    string
		wantHostname string
	}{
		{
			name:         "pod network",
			cfg:          Config{Hostname: "web", PodIPs: []string{"10.85.0.7"}, DNS: &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}}},
			wantResolv:   "nameserver 10.96.0.10\n",
			wantHosts:    kubeletPreamble + "10.85.0.7\tweb\n",
			wantHostname: "web\n",
		},
		{
			name:         "pod network, host DNS behind a stub",
			cfg:          Config{Hostname: "web", PodIPs: []string{"10.85.0.7"}},
			wantResolv:   upstreamConf,
			wantHosts:    kubeletPreamble + "10.85.0.7\tweb\n",
			wantHostname: "web\n",
		},
		{
			name: "host network: the host's hosts file",
			cfg: Config{Hostname: "node1", HostNetwork: true,
				HostAliases: []HostAlias{{IP: "192.0.2.9", Hostnames: []string{"x"}}}},
			wantResolv:   upstreamConf,
			wantHosts:    "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.0.2.3 node1\n\n# Entries added by HostAliases.\n192.0.2.9\tx\n",
			wantHostname: "node1\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			c.Dir = filepath.Join(t.TempDir(), "sandbox")
			c.HostResolvConf, c.UpstreamResolvConf, c.HostHosts = hostResolv, upstream, hostHosts
			files, err := Write(c)
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			for path, want := range map[string]string{
				files.ResolvConf: tt.wantResolv, files.Hosts: tt.wantHosts, files.Hostname: tt.wantHostname,
			} {
				if filepath.Dir(path) != c.Dir {
					t.Errorf("%s is outside the sandbox dir %s", path, c.Dir)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s:\ngot:\n%s\nwant:\n%s", filepath.Base(path), got, want)
				}
				if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
					t.Errorf("%s mode %v, want 0644 (containers run as any user)", path, fi.Mode().Perm())
				}
			}
			entries, _ := os.ReadDir(c.Dir)
			if len(entries) != 3 {
				t.Errorf("sandbox dir holds %d entries, want 3 (no temp files left)", len(entries))
			}
		})
	}
}

func TestWriteHostNetworkDefaultsToHostHostname(t *testing.T) {
	want, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	files, err := Write(Config{Dir: t.TempDir(), HostNetwork: true,
		HostResolvConf: fixture(t, "r", "nameserver 192.0.2.1\n"), HostHosts: fixture(t, "h", "")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(files.Hostname)
	if string(got) != want+"\n" {
		t.Fatalf("hostname file = %q, want %q", got, want+"\n")
	}
}

func TestWriteNeedsHostname(t *testing.T) {
	_, err := Write(Config{Dir: t.TempDir(), HostResolvConf: fixture(t, "r", "nameserver 192.0.2.1\n")})
	if err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Fatalf("Write without hostname: %v", err)
	}
}
