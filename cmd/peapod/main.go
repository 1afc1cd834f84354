// Command peapod is a pod engine: a daemon that runs Kubernetes pods on one
// host (and serves the CRI to a real kubelet), and a kubectl-like CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// globals are the flags every client command shares.
type globals struct {
	host string
}

func (g *globals) client() (*client.Client, error) { return client.New(g.host) }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "peapod",
		Short:         "Run Kubernetes pods on one host, or serve the CRI to a kubelet",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	host := os.Getenv("PEAPOD_HOST")
	if host == "" {
		host = client.DefaultHost
	}
	root.PersistentFlags().StringVar(&g.host, "host", host, "daemon API address (env PEAPOD_HOST)")
	root.AddCommand(
		newDaemonCmd(),
		newVersionCmd(g),
		newPullCmd(g),
		newImagesCmd(g),
		newRmiCmd(g),
		newInspectCmd(g),
		newLoginCmd(g),
		newLogoutCmd(),
		newApplyCmd(g), newCreateCmd(g), newGetCmd(g), newDescribeCmd(g), newDeleteCmd(g),
		newLogsCmd(g), newExecCmd(g), newAttachCmd(g), newPortForwardCmd(g), newCpCmd(g),
		newScaleCmd(g),
	)
	return root
}
