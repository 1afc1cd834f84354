package spec

import (
	"errors"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry", "-e"}, Cmd: []string{"cmd", "-c"}}
	tests := []struct {
		name    string
		command []string
		args    []string
		image   ocispec.ImageConfig
		want    []string
		wantErr error
	}{
		{name: "image entrypoint and cmd", image: img, want: []string{"/entry", "-e", "cmd", "-c"}},
		{name: "args replace cmd, keep entrypoint", args: []string{"a1"}, image: img, want: []string{"/entry", "-e", "a1"}},
		{name: "command replaces entrypoint and cmd", command: []string{"/bin/sh"}, image: img, want: []string{"/bin/sh"}},
		{name: "command and args", command: []string{"/bin/sh"}, args: []string{"-c", "true"}, image: img, want: []string{"/bin/sh", "-c", "true"}},
		{name: "only cmd in image", image: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}, want: []string{"/bin/sh"}},
		{name: "args with no entrypoint", args: []string{"/bin/echo", "hi"}, image: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}, want: []string{"/bin/echo", "hi"}},
		{name: "entrypoint reset with empty string", image: ocispec.ImageConfig{Entrypoint: []string{""}, Cmd: []string{"/run"}}, want: []string{"/run"}},
		{name: "nothing at all", wantErr: ErrNoCommand},
		{name: "entrypoint reset and no cmd", image: ocispec.ImageConfig{Entrypoint: []string{""}}, wantErr: ErrNoCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := processArgs(&runtime.ContainerConfig{Command: tt.command, Args: tt.args}, tt.image)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestContainerEnv(t *testing.T) {
	cfg := &runtime.ContainerConfig{Envs: []*runtime.KeyValue{
		{Key: "FOO", Value: []byte("from-pod")},
		{Key: "NEW", Value: []byte("x=y")},
	}}
	img := ocispec.ImageConfig{Env: []string{"PATH=/image/bin", "FOO=from-image", "KEEP=1"}}
	got := containerEnv(cfg, img, "mypod")
	want := []string{"PATH=/image/bin", "HOSTNAME=mypod", "FOO=from-pod", "KEEP=1", "NEW=x=y"}
	if !slices.Equal(got, want) {
		t.Fatalf("env = %q, want %q", got, want)
	}
	if got := containerEnv(&runtime.ContainerConfig{}, ocispec.ImageConfig{}, "h"); !slices.Equal(got, []string{defaultPath, "HOSTNAME=h"}) {
		t.Fatalf("default env = %q", got)
	}
}

func TestWorkingDir(t *testing.T) {
	tests := []struct{ cfg, image, want string }{
		{"", "", "/"},
		{"", "/srv", "/srv"},
		{"/work", "/srv", "/work"},
		{"rel/dir", "", "/rel/dir"},
		{"/a/../b/", "", "/b"},
	}
	for _, tt := range tests {
		got, err := workingDir(&runtime.ContainerConfig{WorkingDir: tt.cfg}, ocispec.ImageConfig{WorkingDir: tt.image})
		if err != nil || got != tt.want {
			t.Errorf("workingDir(%q, %q) = %q, %v; want %q", tt.cfg, tt.image, got, err, tt.want)
		}
	}
}
