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
		cfg.Image.RegistriesConfig != "/etc/peapod/registries.conf" || cfg.Runtime.Runc != "runc" {
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
