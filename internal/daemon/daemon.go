// Package daemon wires peapod's services together and runs them until the
// context ends: the image service and the API server today, the runtime,
// the CRI server and the pod manager as they arrive.
package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/peapod/peapod/internal/apiserver"
	"github.com/peapod/peapod/internal/config"
	"github.com/peapod/peapod/internal/controller/deployment"
	"github.com/peapod/peapod/internal/cri"
	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/kubelet"
	"github.com/peapod/peapod/internal/runtime"
	objstore "github.com/peapod/peapod/internal/store"
)

// APISocket is the API socket's path for a state directory.
func APISocket(state string) string { return filepath.Join(state, "api.sock") }

// Run starts the daemon and blocks until ctx is done or a service fails.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	for _, d := range []string{cfg.Root, cfg.State} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
	}
	images, err := image.New(ctx, image.Options{
		Root:             cfg.Root,
		RegistriesConfig: cfg.Image.RegistriesConfig,
		CertsDir:         cfg.Image.CertsDir,
		MaxParallelPulls: cfg.Image.MaxParallelPulls,
		Logger:           log,
	})
	if err != nil {
		return fmt.Errorf("daemon: image service: %w", err)
	}
	defer images.Close()

	objects, err := objstore.Open(filepath.Join(cfg.Root, "objects.db"), objstore.Options{Logger: log, GracefulPodDeletion: true})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer objects.Close()
	defer context.AfterFunc(ctx, objects.StopWatches)()
	// The deployment controller keeps each Deployment's pods in the store.
	dctx, stopDeployments := context.WithCancel(ctx)
	deploymentsDone := make(chan struct{})
	go func() {
		defer close(deploymentsDone)
		_ = deployment.New(deployment.Options{Store: objects, Logger: log}).Run(dctx)
	}()
	defer func() { stopDeployments(); <-deploymentsDone }()

	rt, err := runtime.New(ctx, runtime.Options{
		Root: cfg.Root, State: cfg.State, Network: cfg.Network,
		Runc: lookPath(cfg.Runtime.Runc), Conmon: lookPath(cfg.Runtime.Conmon), PauseImage: cfg.Runtime.PauseImage,
		Images: images, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	defer rt.Close()
	criSrv, err := cri.New(cri.Options{
		Runtime: rt.For(cri.Owner), Images: images, Logger: log,
		ImageFsDir:     filepath.Join(cfg.Root, "image"),
		ContainerFsDir: filepath.Join(cfg.Root, "runtime", "containers"),
		ContainersDir:  filepath.Join(cfg.Root, "runtime", "containers"),
		NetworkReady:   func(context.Context) error { return rt.NetworkReady() },
		PinnedImages:   []string{cmp.Or(cfg.Runtime.PauseImage, runtime.LocalPauseImage)},
	})
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	criDone := make(chan error, 1)
	go func() { criDone <- criSrv.Serve(ctx, CRISocket(cfg.State)); cancel() }()

	authFiles := cfg.AuthFilePaths()
	// The pod manager: its own view of the runtime; pods outlive the daemon.
	kopts := kubelet.Options{
		Root: cfg.Root, Runtime: rt.For(kubelet.Owner), Store: objects, Images: images,
		NodeKeyring: kubelet.NodeKeyringFromFiles(authFiles, log), Logger: log,
		ImagePullCredentialsVerificationPolicy: cfg.Kubelet.ImagePullCredentialsVerificationPolicy,
		PreloadedImagesVerificationAllowlist:   cfg.Kubelet.PreloadedImagesVerificationAllowlist,
		ContainerLogMaxSize:                    cfg.Kubelet.LogMaxSizeBytes(),
		ContainerLogMaxFiles:                   cfg.Kubelet.ContainerLogMaxFiles,
		ImageGCHighThresholdPercent:            cfg.Kubelet.ImageGCHighThresholdPercent,
		ImageGCLowThresholdPercent:             cfg.Kubelet.ImageGCLowThresholdPercent,
		ImageUsers:                             []kubelet.ContainerLister{rt.For(cri.Owner)},
		PinnedImages:                           []string{cmp.Or(cfg.Runtime.PauseImage, runtime.LocalPauseImage)},
		NodeName:                               cfg.Kubelet.NodeName,
		CgroupRoot:                             cfg.Kubelet.CgroupRoot,
	}
	if err := kubelet.ApplyTestSettings(&kopts); err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	kl, err := kubelet.New(kopts)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	kubeletDone := make(chan error, 1)
	go func() { kubeletDone <- kl.Run(ctx) }()
	defer func() { cancel(); <-kubeletDone }()
	srv := apiserver.New(images, nodeCredentials(authFiles, log), log)
	srv.SetObjectStore(objects)
	srv.SetPodIO(kl)
	srv.SetPodInspector(kl)
	log.Info("peapod daemon started", "root", cfg.Root, "state", cfg.State, "authFiles", authFiles)
	err = srv.Serve(ctx, APISocket(cfg.State))
	cancel()
	return errors.Join(err, <-criDone)
}

// lookPath resolves a binary named without a path (conmon accepts only an
// absolute runtime path); a name not found is kept for the error to name.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	return name
}

// CRISocket is the CRI socket's path for a state directory.
func CRISocket(state string) string { return filepath.Join(state, "peapod.sock") }

// nodeCredentials reads the node-level auth files at every lookup, so that
// a login or an edited file takes effect without restarting the daemon. A
// file that cannot be read is logged and skipped, as kubelet does.
func nodeCredentials(paths []string, log *slog.Logger) apiserver.NodeCredentials {
	return func(repo string) []keyring.Credential {
		var out []keyring.Credential
		for _, p := range paths {
			kr, err := keyring.FromConfigFile(p)
			if err != nil {
				log.Warn("skipping node auth file", "path", p, "err", err)
				continue
			}
			out = append(out, kr.Lookup(repo)...)
		}
		return out
	}
}
