package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadMissingOptionalFileGivesDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join(t.TempDir(), "none.toml"), true)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Image.MaxParallelPulls != 3 || cfg.Network.Bridge != "peapod0" || cfg.Network.Subnet != "10.85.0.0/16" ||
		cfg.Image.RegistriesConfig != "/etc/peapod/registries.conf" || cfg.Runtime.Runc != "runc" ||
		cfg.Kubelet.ImagePullCredentialsVerificationPolicy != "NeverVerifyPreloadedImages" || len(cfg.Kubelet.PreloadedImagesVerificationAllowlist) != 0 ||
		cfg.Kubelet.ContainerLogMaxSize != "10Mi" || cfg.Kubelet.LogMaxSizeBytes() != 10<<20 || cfg.Kubelet.ContainerLogMaxFiles != 5 ||
		cfg.Kubelet.ImageGCHighThresholdPercent != 85 || cfg.Kubelet.ImageGCLowThresholdPercent != 80 ||
		cfg.Kubelet.NodeName != "" || cfg.Kubelet.CgroupRoot != "/peapod" {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadMissingExplicitFileFails(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml"), false); err == nil {
		t.Fatal("an explicitly named missing config file must be an error")
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, file, wantErr string
		check               func(t *testing.T, c Config)
	}{
		{
			name: "overrides keep other defaults",
			file: "[image]\nmax_parallel_pulls = 7\n[network]\nbridge = \"pp1\"\n",
			check: func(t *testing.T, c Config) {
				if c.Image.MaxParallelPulls != 7 || c.Network.Bridge != "pp1" || c.Network.Subnet != "10.85.0.0/16" {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{name: "unknown key", file: "[image]\nmax_paralel_pulls = 2\n", wantErr: "unknown key(s) image.max_paralel_pulls"},
		{name: "unknown table", file: "[imagez]\nx = 1\n", wantErr: "unknown key(s) imagez"},
		{name: "bad toml", file: "[image\n", wantErr: "config "},
		{name: "bad bound", file: "[image]\nmax_parallel_pulls = 0\n", wantErr: "max_parallel_pulls must be at least 1"},
		{name: "long bridge", file: "[network]\nbridge = \"abcdefghijklmnop\"\n", wantErr: "1 to 15 characters"},
		{
			name: "kubelet table",
			file: "[kubelet]\nimage_pull_credentials_verification_policy = \"NeverVerifyAllowlistedImages\"\n" +
				"preloaded_images_verification_allowlist = [\"registry.example/team/*\", \"docker.io/library/busybox\"]\n" +
				"container_log_max_size = \"500Ki\"\ncontainer_log_max_files = 3\n" +
				"image_gc_high_threshold_percent = 90\nimage_gc_low_threshold_percent = 70\n",
			check: func(t *testing.T, c Config) {
				k := c.Kubelet
				if k.ImagePullCredentialsVerificationPolicy != "NeverVerifyAllowlistedImages" || len(k.PreloadedImagesVerificationAllowlist) != 2 ||
					k.LogMaxSizeBytes() != 500*1024 || k.ContainerLogMaxFiles != 3 || k.ImageGCHighThresholdPercent != 90 || k.ImageGCLowThresholdPercent != 70 {
					t.Fatalf("got %+v", k)
				}
			},
		},
		{
			name: "kubelet keys keep other defaults",
			file: "[kubelet]\ncontainer_log_max_files = 2\n",
			check: func(t *testing.T, c Config) {
				if c.Kubelet.LogMaxSizeBytes() != 10<<20 || c.Kubelet.ImageGCHighThresholdPercent != 85 || c.Kubelet.ImagePullCredentialsVerificationPolicy != "NeverVerifyPreloadedImages" {
					t.Fatalf("got %+v", c.Kubelet)
				}
			},
		},
		{name: "unknown policy", file: "[kubelet]\nimage_pull_credentials_verification_policy = \"Sometimes\"\n", wantErr: `kubelet.image_pull_credentials_verification_policy "Sometimes": want one of NeverVerify, NeverVerifyPreloadedImages, NeverVerifyAllowlistedImages, AlwaysVerify`},
		{name: "empty policy", file: "[kubelet]\nimage_pull_credentials_verification_policy = \"\"\n", wantErr: "kubelet.image_pull_credentials_verification_policy"},
		{name: "allowlist without its policy", file: "[kubelet]\npreloaded_images_verification_allowlist = [\"busybox\"]\n", wantErr: "only used with image_pull_credentials_verification_policy = \"NeverVerifyAllowlistedImages\""},
		{name: "allowlist entry with tag", file: "[kubelet]\nimage_pull_credentials_verification_policy = \"NeverVerifyAllowlistedImages\"\npreloaded_images_verification_allowlist = [\"busybox:1\"]\n", wantErr: "no tag, digest or wildcard"},
		{name: "bad log size", file: "[kubelet]\ncontainer_log_max_size = \"ten megs\"\n", wantErr: `kubelet.container_log_max_size "ten megs": want a positive quantity`},
		{name: "zero log size", file: "[kubelet]\ncontainer_log_max_size = \"0\"\n", wantErr: "kubelet.container_log_max_size"},
		{name: "one log file", file: "[kubelet]\ncontainer_log_max_files = 1\n", wantErr: "kubelet.container_log_max_files must be at least 2"},
		{name: "threshold above 100", file: "[kubelet]\nimage_gc_high_threshold_percent = 101\n", wantErr: "kubelet.image_gc_high_threshold_percent must be between 0 and 100, got 101"},
		{name: "low not below high", file: "[kubelet]\nimage_gc_low_threshold_percent = 85\n", wantErr: "kubelet.image_gc_low_threshold_percent (85) must be less than image_gc_high_threshold_percent (85)"},
		{
			name: "node name and cgroup root",
			file: "[kubelet]\nnode_name = \"worker-1\"\ncgroup_root = \"/pods\"\n",
			check: func(t *testing.T, c Config) {
				if c.Kubelet.NodeName != "worker-1" || c.Kubelet.CgroupRoot != "/pods" {
					t.Fatalf("got %+v", c.Kubelet)
				}
			},
		},
		{name: "bad node name", file: "[kubelet]\nnode_name = \"Worker_1\"\n", wantErr: `kubelet.node_name "Worker_1": a lowercase RFC 1123 subdomain`},
		{name: "relative cgroup root", file: "[kubelet]\ncgroup_root = \"peapod\"\n", wantErr: `kubelet.cgroup_root "peapod": want an absolute, clean cgroupfs path`},
		{name: "systemd cgroup root", file: "[kubelet]\ncgroup_root = \"/system.slice:peapod:x\"\n", wantErr: `kubelet.cgroup_root`},
		{name: "unknown kubelet key", file: "[kubelet]\nserialize_image_pulls = false\n", wantErr: "unknown key(s) kubelet.serialize_image_pulls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "peapod.toml")
			if err := os.WriteFile(p, []byte(tt.file), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestExpandPath(t *testing.T) {
	home, _ := os.UserHomeDir()
	tests := map[string]string{
		"ROOT/config.json":      "/r/config.json",
		"~/.docker/config.json": filepath.Join(home, ".docker/config.json"),
		"/etc/x.json":           "/etc/x.json",
		"ROOTS/x":               "ROOTS/x",
	}
	for in, want := range tests {
		if got := ExpandPath(in, "/r"); got != want {
			t.Errorf("ExpandPath(%q) = %q, want %q", in, got, want)
		}
	}
}
