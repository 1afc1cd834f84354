package main

import (
	"context"
	"errors"
	"log/slog"
)

func profilePull(ctx context.Context, work, regConf, ref, outDir string, log *slog.Logger) error {
	return errors.New("not yet")
}
