package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/objects"
)

func newApplyCmd(g *globals) *cobra.Command {
	var (
		files []string
		ns    nsFlags
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILENAME",
		Short: "Apply a configuration to objects by file name or stdin (kubectl's client-side apply)",
		Long: "Create objects that do not exist and patch those that do, with a three-way merge\n" +
			"against the kubectl.kubernetes.io/last-applied-configuration annotation. Every\n" +
			"document of every file is checked first; if one is wrong, nothing is applied.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns.explicit = cmd.Flags().Changed("namespace")
			docs, err := readManifests(cmd.InOrStdin(), files)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			plan, err := planApply(ctx, c, docs, &ns, false)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, p := range plan {
				name := ref(p.doc.Kind, p.doc.Object.GetName())
				switch {
				case p.noChange:
					fmt.Fprintf(out, "%s unchanged\n", name)
				case p.create:
					if _, err := c.Create(ctx, p.doc.Kind, p.ns, p.body, false); err != nil {
						return docError(p.doc, "creating", err)
					}
					fmt.Fprintf(out, "%s created\n", name)
				default:
					if _, err := c.Patch(ctx, p.doc.Kind, p.ns, p.doc.Object.GetName(), objects.StrategicMergePatchType, p.body, false); err != nil {
						return docError(p.doc, "patching", err)
					}
					fmt.Fprintf(out, "%s configured\n", name)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) with the manifests; repeatable")
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace for objects that name none (default \"default\")")
	return cmd
}
