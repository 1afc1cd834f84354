package spec

import (
	"errors"
	"fmt"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrNoCommand is returned when neither the request nor the image says what
// to run.
var ErrNoCommand = errors.New("no command specified: the container config has no command or args and the image has no entrypoint or cmd")

// defaultPath is the PATH a container gets when neither the image nor the
// request sets one (containerd's and Docker's).
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processArgs applies Kubernetes' rules for command and args:
//
//	command set:   command + args (the image's entrypoint and cmd are ignored)
//	command unset: image entrypoint + (args if set, else image cmd)
//
// An image entrypoint of [""] means "no entrypoint" (Docker's way to reset
// one inherited from a base image).
func processArgs(config *runtime.ContainerConfig, image ocispec.ImageConfig) ([]string, error) {
	command, args := config.GetCommand(), config.GetArgs()
	var out []string
	if len(command) > 0 {
		out = append(append(out, command...), args...)
	} else {
		if !(len(image.Entrypoint) == 1 && image.Entrypoint[0] == "") {
			out = append(out, image.Entrypoint...)
		}
		if len(args) > 0 {
			out = append(out, args...)
		} else {
			out = append(out, image.Cmd...)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoCommand
	}
	return out, nil
}

// mergeEnv returns the environment built from layers, later ones overriding
// earlier ones key by key while keeping the first position of each key.
// Entries without '=' are kept as they are (runc passes them through).
func mergeEnv(layers ...[]string) []string {
	var out []string
	index := map[string]int{}
	for _, layer := range layers {
		for _, kv := range layer {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// containerEnv is: a default PATH, HOSTNAME (the pod's), the image's env,
// then the request's envs, each overriding the ones before it.
func containerEnv(config *runtime.ContainerConfig, image ocispec.ImageConfig, hostname string) []string {
	base := []string{defaultPath}
	if hostname != "" {
		base = append(base, "HOSTNAME="+hostname)
	}
	var req []string
	for _, kv := range config.GetEnvs() {
		req = append(req, kv.GetKey()+"="+string(kv.GetValue()))
	}
	return mergeEnv(base, image.Env, req)
}

// workingDir is the request's, else the image's, else "/". A relative
// directory is taken from "/" as Docker does; runc itself requires an
// absolute one.
func workingDir(config *runtime.ContainerConfig, image ocispec.ImageConfig) (string, error) {
	dir := config.GetWorkingDir()
	if dir == "" {
		dir = image.WorkingDir
	}
	if dir == "" {
		return "/", nil
	}
	if strings.ContainsRune(dir, 0) {
		return "", fmt.Errorf("working dir %q: contains NUL", dir)
	}
	return path.Clean("/" + dir), nil
}
