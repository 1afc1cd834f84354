package main

import (
	"context"
	"fmt"

	"github.com/peapod/peapod/internal/registrytest"
)

// startRegistry runs an anonymous plain-HTTP docker-registry on
// 127.0.0.1 with its storage under dir.
func startRegistry(ctx context.Context, dir string) (*registrytest.Registry, error) {
	reg, err := registrytest.Launch(ctx, dir, registrytest.Options{})
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	return reg, nil
}
