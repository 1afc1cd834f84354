package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/objects"
)

func newDeleteCmd(g *globals) *cobra.Command {
	var (
		files          []string
		ns             nsFlags
		grace          int64
		ignoreNotFound bool
	)
	cmd := &cobra.Command{
		Use:   "delete (-f FILENAME | TYPE NAME... | TYPE/NAME...) [--grace-period N] [-n NS]",
		Short: "Delete objects by file name or by type and name",
		Long: "Delete objects. Deleting a namespace deletes everything in it. --grace-period\n" +
			"overrides a pod's terminationGracePeriodSeconds (0: at once).",
		RunE: func(cmd *cobra.Command, args []string) error {
			ns.explicit = cmd.Flags().Changed("namespace")
			c, err := g.client()
			if err != nil {
				return err
			}
			var gp *int64
			if grace >= 0 {
				gp = &grace
			}
			type item struct {
				kind     objects.Kind
				ns, name string
			}
			var items []item
			if len(files) > 0 {
				if len(args) > 0 {
					return errors.New("when paths are specified, resource types and names may not be given")
				}
				docs, err := readManifests(cmd.InOrStdin(), files)
				if err != nil {
					return err
				}
				for i := range docs {
					d := &docs[i]
					n, err := docNamespace(d, &ns)
					if err != nil {
						return err
					}
					items = append(items, item{kind: d.Kind, ns: n, name: d.Object.GetName()})
				}
			} else {
				targets, err := parseTargets(args)
				if err != nil {
					return err
				}
				for _, t := range targets {
					if len(t.names) == 0 {
						return errors.New("resource(s) were provided, but no name was specified")
					}
					for _, n := range t.names {
						items = append(items, item{kind: t.kind, ns: ns.ns(), name: n})
					}
				}
			}
			var errs []error
			for _, it := range items {
				n := it.ns
				if !it.kind.Namespaced {
					n = ""
				}
				if _, err := c.Delete(cmd.Context(), it.kind, n, it.name, gp); err != nil {
					if ignoreNotFound && isNotFound(err) {
						continue
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %q deleted\n", qualified(it.kind), it.name)
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) naming the objects to delete")
	f.StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	f.Int64Var(&grace, "grace-period", -1, "seconds given to the pod to stop; -1 uses the pod's terminationGracePeriodSeconds, 0 deletes at once")
	f.BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat \"not found\" as a successful delete")
	return cmd
}
