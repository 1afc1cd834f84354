package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/client"
	"github.com/peapod/peapod/internal/objects"
)

// target is one TYPE with the names asked for (none: all).
type target struct {
	kind  objects.Kind
	names []string
}

// parseTargets reads kubectl's `TYPE [NAME...]` or `TYPE/NAME...` forms.
func parseTargets(args []string) ([]target, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("you must specify the type of resource to get. Valid resource types include: %s", strings.Join(objects.ResourceNames(), ", "))
	}
	if strings.Contains(args[0], "/") {
		var out []target
		for _, a := range args {
			t, n, ok := strings.Cut(a, "/")
			if !ok || n == "" {
				return nil, fmt.Errorf("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'peapod get resource/<resource_name>' instead of 'peapod get resource resource/<resource_name>'")
			}
			k, err := objects.ForResource(t)
			if err != nil {
				return nil, err
			}
			out = append(out, target{kind: k, names: []string{n}})
		}
		return out, nil
	}
	var out []target
	for _, t := range strings.Split(args[0], ",") {
		k, err := objects.ForResource(t)
		if err != nil {
			return nil, err
		}
		out = append(out, target{kind: k, names: args[1:]})
	}
	return out, nil
}

func newGetCmd(g *globals) *cobra.Command {
	var (
		ns            nsFlags
		all, watch    bool
		selector      string
		fieldSelector string
		output        string
	)
	cmd := &cobra.Command{
		Use:   "get TYPE[/NAME] [NAME...] [-n NS | -A] [-l SELECTOR] [-o wide|yaml|json|name|jsonpath=EXPR] [-w]",
		Short: "Display one or many objects",
		Long: "Display objects in kubectl's formats. TYPE is one of " + strings.Join(objects.ResourceNames(), ", ") +
			"\n(singular names and short names such as po, ns, cm, ev also work).",
		RunE: func(cmd *cobra.Command, args []string) error {
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			wide := output == "wide"
			table := output == "" || wide
			var items []objects.Object
			single := len(targets) == 1 && len(targets[0].names) == 1
			for _, t := range targets {
				namespace := ns.ns()
				if all || !t.kind.Namespaced {
					namespace = ""
				}
				var got []objects.Object
				var rv string
				if len(t.names) == 0 {
					got, rv, err = c.List(ctx, t.kind, namespace, client.ListOptions{LabelSelector: selector, FieldSelector: fieldSelector})
					if err != nil {
						return err
					}
				} else {
					for _, n := range t.names {
						o, err := c.Get(ctx, t.kind, ns.ns(), n)
						if err != nil {
							return err
						}
						got = append(got, o)
					}
				}
				if table {
					if len(got) == 0 && !watch {
						if namespace == "" || !t.kind.Namespaced {
							fmt.Fprintln(cmd.ErrOrStderr(), "No resources found")
						} else {
							fmt.Fprintf(cmd.ErrOrStderr(), "No resources found in %s namespace.\n", namespace)
						}
						continue
					}
					printTable(out, t.kind, got, wide, all && t.kind.Namespaced, true)
				} else {
					items = append(items, got...)
				}
				if watch {
					lo := client.ListOptions{LabelSelector: selector, FieldSelector: fieldSelector, ResourceVersion: rv}
					if len(t.names) == 1 {
						lo.FieldSelector = "metadata.name=" + t.names[0]
						lo.ResourceVersion = ""
						namespace = ns.ns()
						if !t.kind.Namespaced {
							namespace = ""
						}
					}
					if !table {
						if err := printObjects(out, output, items, single); err != nil {
							return err
						}
					}
					first := lo.ResourceVersion == ""
					return c.Watch(ctx, t.kind, namespace, lo, func(_ string, o objects.Object) error {
						if first && len(t.names) == 1 {
							first = false
							return nil // the object printed above
						}
						if table {
							printTable(out, t.kind, []objects.Object{o}, wide, all && t.kind.Namespaced, false)
							return nil
						}
						return printObjects(out, output, []objects.Object{o}, true)
					})
				}
			}
			if table {
				return nil
			}
			return printObjects(out, output, items, single)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	f.BoolVarP(&all, "all-namespaces", "A", false, "list across all namespaces")
	f.StringVarP(&selector, "selector", "l", "", "label selector (e.g. -l app=web,tier!=db)")
	f.StringVar(&fieldSelector, "field-selector", "", "field selector (e.g. --field-selector status.phase=Running)")
	f.StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name or jsonpath=TEMPLATE")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, watch for changes")
	return cmd
}
