// Package daemon wires peapod's services together and runs them until the
// context ends: the image service and the API server today, the runtime,
// the CRI server and the pod manager as they arrive.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/peapod/peapod/internal/apiserver"
	"github.com/peapod/peapod/internal/config"
	"github.com/peapod/peapod/internal/controller/deployment"
	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
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

	objects, err := objstore.Open(filepath.Join(cfg.Root, "objects.db"), objstore.Options{Logger: log})
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

	authFiles := cfg.AuthFilePaths()
	srv := apiserver.New(images, nodeCredentials(authFiles, log), log)
	srv.SetObjectStore(objects)
	log.Info("peapod daemon started", "root", cfg.Root, "state", cfg.State, "authFiles", authFiles)
	return srv.Serve(ctx, APISocket(cfg.State))
}

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
