package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/apiserver"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client and daemon versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "Client Version: %s (%s, %s/%s)\n", apiserver.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			c, err := g.client()
			if err != nil {
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Server Version: %s (%s, %s)\n", v.Version, v.GoVersion, v.Platform)
			return nil
		},
	}
}
