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
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/peapod/peapod/internal/kubelet/images"
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
	Kubelet Kubelet `toml:"kubelet"`
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

// Kubelet configures the pod manager, with the meaning and defaults of
// kubelet's KubeletConfiguration fields of the same names.
type Kubelet struct {
	// ImagePullCredentialsVerificationPolicy: which images already on the
	// node a pod may use without credentials that could pull them
	// (NeverVerify, NeverVerifyPreloadedImages, NeverVerifyAllowlistedImages,
	// AlwaysVerify).
	ImagePullCredentialsVerificationPolicy string `toml:"image_pull_credentials_verification_policy"`
	// PreloadedImagesVerificationAllowlist: preloaded images exempt under
	// NeverVerifyAllowlistedImages (names without tag, or "prefix/*").
	PreloadedImagesVerificationAllowlist []string `toml:"preloaded_images_verification_allowlist"`
	// ContainerLogMaxSize is a quantity ("10Mi"): a running container's
	// log is rotated beyond it.
	ContainerLogMaxSize string `toml:"container_log_max_size"`
	// ContainerLogMaxFiles: log files kept per container, the current one
	// included.
	ContainerLogMaxFiles int `toml:"container_log_max_files"`
	// Image garbage collection: above the high percentage of the image
	// filesystem (the root directory's) in use, unused images are removed
	// until usage is below the low one.
	ImageGCHighThresholdPercent int `toml:"image_gc_high_threshold_percent"`
	ImageGCLowThresholdPercent  int `toml:"image_gc_low_threshold_percent"`
	// NodeName is this node's name: pods applied without spec.nodeName are
	// bound to it, pods naming another node are not run. Empty means the
	// host name.
	NodeName string `toml:"node_name"`
	// CgroupRoot is the cgroupfs path under which the pod cgroups are made
	// (CgroupRoot/kubepods[/burstable|/besteffort]/pod<UID>), kubelet's
	// cgroupRoot with cgroupsPerQOS and the cgroupfs driver.
	CgroupRoot string `toml:"cgroup_root"`
}

// LogMaxSizeBytes is ContainerLogMaxSize in bytes (validated by Load).
func (k Kubelet) LogMaxSizeBytes() int64 {
	q, err := resource.ParseQuantity(k.ContainerLogMaxSize)
	if err != nil {
		return 0
	}
	return q.Value()
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
		Kubelet: Kubelet{
			ImagePullCredentialsVerificationPolicy: string(images.DefaultVerificationPolicy),
			PreloadedImagesVerificationAllowlist:   []string{},
			ContainerLogMaxSize:                    "10Mi",
			ContainerLogMaxFiles:                   5,
			ImageGCHighThresholdPercent:            85,
			ImageGCLowThresholdPercent:             80,
			CgroupRoot:                             "/peapod",
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
	return c.Kubelet.validate()
}

func (k *Kubelet) validate() error {
	if _, err := images.ParseVerificationPolicy(k.ImagePullCredentialsVerificationPolicy); err != nil || k.ImagePullCredentialsVerificationPolicy == "" {
		return fmt.Errorf("kubelet.image_pull_credentials_verification_policy %q: want one of %s, %s, %s, %s",
			k.ImagePullCredentialsVerificationPolicy, images.NeverVerify, images.NeverVerifyPreloadedImages, images.NeverVerifyAllowlistedImages, images.AlwaysVerify)
	}
	if len(k.PreloadedImagesVerificationAllowlist) > 0 && k.ImagePullCredentialsVerificationPolicy != string(images.NeverVerifyAllowlistedImages) {
		return fmt.Errorf("kubelet.preloaded_images_verification_allowlist is only used with image_pull_credentials_verification_policy = %q (it is %q)",
			images.NeverVerifyAllowlistedImages, k.ImagePullCredentialsVerificationPolicy)
	}
	for _, a := range k.PreloadedImagesVerificationAllowlist {
		if err := images.ValidateAllowlistEntry(a); err != nil {
			return fmt.Errorf("kubelet.preloaded_images_verification_allowlist: %w", err)
		}
	}
	q, err := resource.ParseQuantity(k.ContainerLogMaxSize)
	if err != nil || q.Sign() <= 0 {
		return fmt.Errorf("kubelet.container_log_max_size %q: want a positive quantity such as \"10Mi\" or \"500Ki\"", k.ContainerLogMaxSize)
	}
	if k.ContainerLogMaxFiles < 2 {
		return fmt.Errorf("kubelet.container_log_max_files must be at least 2 (the current file and one rotated), got %d", k.ContainerLogMaxFiles)
	}
	for _, v := range []struct {
		key string
		n   int
	}{{"image_gc_high_threshold_percent", k.ImageGCHighThresholdPercent}, {"image_gc_low_threshold_percent", k.ImageGCLowThresholdPercent}} {
		if v.n < 0 || v.n > 100 {
			return fmt.Errorf("kubelet.%s must be between 0 and 100, got %d", v.key, v.n)
		}
	}
	if k.NodeName != "" {
		if msgs := validation.IsDNS1123Subdomain(k.NodeName); len(msgs) > 0 {
			return fmt.Errorf("kubelet.node_name %q: %s", k.NodeName, strings.Join(msgs, "; "))
		}
	}
	if !path.IsAbs(k.CgroupRoot) || path.Clean(k.CgroupRoot) != k.CgroupRoot || strings.Contains(k.CgroupRoot, ":") {
		return fmt.Errorf("kubelet.cgroup_root %q: want an absolute, clean cgroupfs path such as \"/peapod\" (the systemd driver is not supported)", k.CgroupRoot)
	}
	if k.ImageGCLowThresholdPercent >= k.ImageGCHighThresholdPercent {
		return fmt.Errorf("kubelet.image_gc_low_threshold_percent (%d) must be less than image_gc_high_threshold_percent (%d)",
			k.ImageGCLowThresholdPercent, k.ImageGCHighThresholdPercent)
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
