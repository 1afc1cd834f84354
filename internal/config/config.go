// Package config reads peapod.toml, the daemon's configuration file.
//
// Every setting has a default, so the file is optional. Anything that is not
// host-global by nature lives under the root or state directory; what is
// host-global (CNI directories, bridge, subnet, registries configuration) is a
// setting, so that several daemons can run side by side in tests.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Defaults for the command-line flags and the file.
const (
	DefaultRoot       = "/var/lib/peapod"
	DefaultState      = "/run/peapod"
	DefaultConfigFile = "/etc/peapod/peapod.toml"
)

// Config is the whole daemon configuration.
type Config struct {
	// Root holds persistent data: images, layers, the object store.
	Root string `toml:"-"`
	// State holds runtime data: sockets, pinned namespaces, runc state.
	State string `toml:"-"`

	Image   Image   `toml:"image"`
	Network Network `toml:"network"`
	Runtime Runtime `toml:"runtime"`
}

// Image configures the image service.
type Image struct {
	// RegistriesConfig is a containers-registries.conf (v2) file: mirrors,
	// insecure and blocked registries. A missing file means no special rules.
	RegistriesConfig string `toml:"registries_config"`
	// CertsDir holds per-registry TLS material, docker style:
	// CertsDir/HOST[:PORT]/*.crt are CAs, client.cert + client.key a client pair.
	CertsDir string `toml:"certs_dir"`
	// AuthFiles are node-level Docker config.json files, tried after a pod's
	// own pull secrets, as kubelet does with its config.json. "ROOT" and a
	// leading "~" are expanded.
	AuthFiles []string `toml:"auth_files"`
	// MaxParallelPulls bounds how many different images are pulled at once,
	// so one slow image never blocks every other pod.
	MaxParallelPulls int `toml:"max_parallel_pulls"`
}

// Network configures the pod network.
type Network struct {
	CNIConfDir string   `toml:"cni_conf_dir"`
	CNIBinDirs []string `toml:"cni_bin_dirs"`
	// Bridge and Subnet are used for the default network config that peapod
	// writes when CNIConfDir holds none.
	Bridge string `toml:"bridge"`
	Subnet string `toml:"subnet"`
}

// Runtime configures how containers are run.
type Runtime struct {
	Runc   string `toml:"runc"`
	Conmon string `toml:"conmon"`
	// PauseImage is the infra container's image. Empty means a pause image
	// built locally from a static binary, so no network is needed.
	PauseImage string `toml:"pause_image"`
}

// Default returns the configuration used when no file exists.
func Default() Config {
	return Config{
		Root:  DefaultRoot,
		State: DefaultState,
		Image: Image{
			RegistriesConfig: "/etc/peapod/registries.conf",
			CertsDir:         "/etc/peapod/certs.d",
			AuthFiles:        []string{"ROOT/config.json", "~/.docker/config.json"},
			MaxParallelPulls: 3,
		},
		Network: Network{
			CNIConfDir: "/etc/cni/net.d",
			CNIBinDirs: []string{"/usr/lib/cni", "/opt/cni/bin"},
			Bridge:     "peapod0",
			Subnet:     "10.85.0.0/16",
		},
		Runtime: Runtime{
			Runc:   "runc",
			Conmon: "conmon",
		},
	}
}

// Load reads the file at path over the defaults. A missing file is not an
// error when optional is true (the default path); a file named explicitly
// must exist. Unknown keys are errors, so a typo never silently falls back
// to a default.
func Load(path string, optional bool) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if optional && errors.Is(err, fs.ErrNotExist) {
			return cfg, nil
		}
		return cfg, fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return cfg, fmt.Errorf("config %s: unknown key(s) %s", path, strings.Join(keys, ", "))
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func (c *Config) validate() error {
	if c.Image.MaxParallelPulls < 1 {
		return fmt.Errorf("image.max_parallel_pulls must be at least 1, got %d", c.Image.MaxParallelPulls)
	}
	if c.Network.Bridge == "" || len(c.Network.Bridge) > 15 {
		return fmt.Errorf("network.bridge %q must be 1 to 15 characters (a Linux interface name)", c.Network.Bridge)
	}
	return nil
}

// ExpandPath resolves "ROOT" (a leading path element) to root and a leading
// "~" to the home directory, so the file can name paths relative to either.
func ExpandPath(p, root string) string {
	switch {
	case p == "ROOT" || strings.HasPrefix(p, "ROOT/"):
		return filepath.Join(root, strings.TrimPrefix(p, "ROOT"))
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return p
		}
		return filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	return p
}

// AuthFilePaths returns the node-level auth files with paths expanded.
func (c *Config) AuthFilePaths() []string {
	out := make([]string, 0, len(c.Image.AuthFiles))
	for _, p := range c.Image.AuthFiles {
		out = append(out, ExpandPath(p, c.Root))
	}
	return out
}
