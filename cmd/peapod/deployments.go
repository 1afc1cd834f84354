package main

// Deployments in kubectl's output: the get columns, describe, and
// `scale deployment NAME --replicas N`.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/objects"
)

// qualified is kubectl's name of a kind in messages: "pod", but
// "deployment.apps" for a kind outside the core group.
func qualified(k objects.Kind) string {
	if k.GVK.Group != "" {
		return k.Singular + "." + k.GVK.Group
	}
	return k.Singular
}

// unqualifiedInvalid names the kind of an Invalid error without its group,
// as kubectl does (`Deployment "web" is invalid`, where the API server says
// `Deployment.apps "web" is invalid`).
func unqualifiedInvalid(err error, msg string) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if d := st.Status().Details; d != nil && d.Group != "" {
			return strings.Replace(msg, d.Kind+"."+d.Group+" ", d.Kind+" ", 1)
		}
	}
	return msg
}

func deploymentColumns(wide bool) []string {
	c := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}
	if wide {
		c = append(c, "CONTAINERS", "IMAGES", "SELECTOR")
	}
	return c
}

func deploymentRow(d *appsv1.Deployment, wide bool) []string {
	want := int32(0)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	r := []string{d.Name, fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want),
		strconv.Itoa(int(d.Status.UpdatedReplicas)), strconv.Itoa(int(d.Status.AvailableReplicas)), age(d.CreationTimestamp)}
	if wide {
		var names, images []string
		for _, c := range d.Spec.Template.Spec.Containers {
			names = append(names, c.Name)
			images = append(images, c.Image)
		}
		r = append(r, strings.Join(names, ","), strings.Join(images, ","), selectorString(d.Spec.Selector))
	}
	return r
}

func selectorString(s *metav1.LabelSelector) string {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil || sel.Empty() {
		return "<none>"
	}
	return sel.String()
}

// describeDeployment prints what kubectl's describe prints for a
// Deployment (without ReplicaSets, which peapod does not model: the pods'
// group is named as Kubernetes would name the ReplicaSet).
func describeDeployment(k *kv, d *appsv1.Deployment) {
	k.line("CreationTimestamp", d.CreationTimestamp.Time.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	mapLines(k, "Labels", d.Labels)
	mapLines(k, "Annotations", d.Annotations)
	k.line("Selector", selectorString(d.Spec.Selector))
	want := int32(0)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	k.line("Replicas", fmt.Sprintf("%d desired | %d updated | %d total | %d available | %d unavailable",
		want, st.UpdatedReplicas, st.Replicas, st.AvailableReplicas, st.UnavailableReplicas))
	k.line("StrategyType", d.Spec.Strategy.Type)
	k.line("MinReadySeconds", d.Spec.MinReadySeconds)
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil && ru.MaxSurge != nil {
		k.line("RollingUpdateStrategy", fmt.Sprintf("%s max unavailable, %s max surge", ru.MaxUnavailable.String(), ru.MaxSurge.String()))
	}
	k.line("Pod Template", "")
	k.indent = "  "
	mapLines(k, "Labels", d.Spec.Template.Labels)
	k.line("Containers", "")
	for _, c := range d.Spec.Template.Spec.Containers {
		k.indent = "   "
		k.line(c.Name, "")
		k.indent = "    "
		k.line("Image", c.Image)
		if len(c.Ports) == 0 {
			k.line("Port", "<none>")
		}
		for _, p := range c.Ports {
			k.line("Port", fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
		}
		if len(c.Command) > 0 {
			k.line("Command", strings.Join(c.Command, " "))
		}
		if len(c.Args) > 0 {
			k.line("Args", strings.Join(c.Args, " "))
		}
		var env []string
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env = append(env, e.Name+": "+e.Value)
			} else {
				env = append(env, e.Name+": <set from a reference>")
			}
		}
		k.line("Environment", orNone(strings.Join(env, "\n      ")))
	}
	k.indent = "  "
	var vols []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols = append(vols, v.Name)
	}
	k.line("Volumes", orNone(strings.Join(vols, ", ")))
	k.indent = ""
	if len(st.Conditions) > 0 {
		k.line("Conditions", "")
		k.line("", "  Type\tStatus\tReason")
		k.line("", "  ----\t------\t------")
		for _, c := range st.Conditions {
			k.line("", fmt.Sprintf("  %s\t%s\t%s", c.Type, c.Status, c.Reason))
		}
	}
	hash := objects.PodTemplateHash(&d.Spec.Template, st.CollisionCount)
	k.line("NewReplicaSet", fmt.Sprintf("%s-%s (%d/%d replicas created)", d.Name, hash, st.UpdatedReplicas, want))
}

func newScaleCmd(g *globals) *cobra.Command {
	var (
		ns       nsFlags
		replicas int32
	)
	cmd := &cobra.Command{
		Use:   "scale deployment NAME --replicas N [-n NS]",
		Short: "Set a Deployment's number of replicas",
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("replicas") {
				return errors.New("required flag(s) \"replicas\" not set")
			}
			if replicas < 0 {
				//lint:ignore ST1005 kubectl's wording
				return errors.New("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
			}
			targets, err := parseTargets(args)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, t := range targets {
				if t.kind.GVK.Kind != "Deployment" {
					errs = append(errs, fmt.Errorf("cannot scale %s: only deployments can be scaled", t.kind.Resource))
					continue
				}
				if len(t.names) == 0 {
					return errors.New("resource(s) were provided, but no name was specified")
				}
				for _, n := range t.names {
					patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
					if _, err := c.Patch(cmd.Context(), t.kind, ns.ns(), n, objects.MergePatchType, []byte(patch), false); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%s/%s scaled\n", qualified(t.kind), n)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().Int32Var(&replicas, "replicas", 0, "the new number of replicas")
	return cmd
}
