package main

import (
	"encoding/json"

	"github.com/spf13/cobra"
)

// newInspectPodCmd is `peapod inspect pod`: the runtime's side of a pod,
// as `crictl inspectp` + `crictl inspect` give it — what a user needs to look
// at the pod from the host (nsenter, /proc/PID/ns), which the Pod object
// does not carry.
func newInspectPodCmd(g *globals) *cobra.Command {
	var ns nsFlags
	cmd := &cobra.Command{
		Use:   "pod POD [-n NAMESPACE]",
		Short: "Show a pod's sandbox, infra process and containers with their host PIDs as JSON",
		Long: `Show the runtime's view of a pod as JSON: the current sandbox's ID, its
infra (pause) process's PID and network namespace, and each container's ID,
state and main process PID. PIDs are in the host's PID namespace (0 when
not running), so /proc/PID/ns/{net,ipc,uts} of the infra process and of the
containers can be compared: a pod's containers share those namespaces.`,
		Example: `  peapod inspect pod web -n awesomeapps
  readlink /proc/$(peapod inspect pod web | jq .infraPID)/ns/net`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			in, err := c.InspectPod(cmd.Context(), ns.ns(), podName(args[0]))
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(in)
		},
	}
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}
