package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/config"
	"github.com/peapod/peapod/internal/daemon"
)

func newDaemonCmd() *cobra.Command {
	var root, state, file, logLevel string
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the peapod daemon (API socket, image service)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg, err := config.Load(file, !cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			cfg.Root, cfg.State = root, state
			return daemon.Run(cmd.Context(), cfg, log)
		},
	}
	cmd.Flags().StringVar(&root, "root", config.DefaultRoot, "directory for persistent data (images, objects)")
	cmd.Flags().StringVar(&state, "state", config.DefaultState, "directory for runtime state (sockets, namespaces)")
	cmd.Flags().StringVar(&file, "config", config.DefaultConfigFile, "configuration file (optional at its default path)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
