package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/client"
	"github.com/peapod/peapod/internal/objects"
)

func newDescribeCmd(g *globals) *cobra.Command {
	var ns nsFlags
	cmd := &cobra.Command{
		Use:   "describe TYPE NAME | TYPE/NAME",
		Short: "Show details of an object and its events (never a Secret's data)",
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
			first := true
			for _, t := range targets {
				namespace := ns.ns()
				if !t.kind.Namespaced {
					namespace = ""
				}
				var items []objects.Object
				if len(t.names) == 0 {
					if items, _, err = c.List(ctx, t.kind, namespace, client.ListOptions{}); err != nil {
						return err
					}
				}
				for _, n := range t.names {
					o, err := c.Get(ctx, t.kind, namespace, n)
					if err != nil {
						return err
					}
					items = append(items, o)
				}
				for _, o := range items {
					if !first {
						fmt.Fprintln(out)
					}
					first = false
					if err := describe(ctx, out, c, t.kind, o); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

// kv writes aligned "Key:  value" lines at an indent.
type kv struct {
	tw     *tabwriter.Writer
	indent string
}

func newKV(w io.Writer) *kv { return &kv{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)} }

func (k *kv) line(key string, val any) {
	if key == "" {
		fmt.Fprintf(k.tw, "%s%v\n", k.indent, val)
		return
	}
	fmt.Fprintf(k.tw, "%s%s:\t%v\n", k.indent, key, val)
}

func (k *kv) flush() { k.tw.Flush() }

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// mapLines prints labels or annotations one per line as kubectl does,
// leaving out the last-applied annotation (it may hold a Secret's data).
func mapLines(k *kv, title string, m map[string]string) {
	var keys []string
	for key := range m {
		if key != objects.LastAppliedAnnotation {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		k.line(title, "<none>")
		return
	}
	for i, key := range keys {
		t := title
		if i > 0 {
			t = ""
			fmt.Fprintf(k.tw, "%s\t%s=%s\n", k.indent, key, m[key])
			continue
		}
		k.line(t, key+"="+m[key])
	}
}

func describe(ctx context.Context, w io.Writer, c *client.Client, kind objects.Kind, o objects.Object) error {
	k := newKV(w)
	k.line("Name", o.GetName())
	if kind.Namespaced {
		k.line("Namespace", o.GetNamespace())
	}
	switch x := o.(type) {
	case *corev1.Pod:
		describePod(k, x)
	case *corev1.Secret:
		mapLines(k, "Labels", x.Labels)
		mapLines(k, "Annotations", x.Annotations)
		k.line("", "")
		k.line("Type", x.Type)
		k.line("", "")
		k.line("", "Data\n====")
		keys := make([]string, 0, len(x.Data))
		for key := range x.Data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			k.line(key, fmt.Sprintf("%d bytes", len(x.Data[key])))
		}
	case *corev1.ConfigMap:
		mapLines(k, "Labels", x.Labels)
		mapLines(k, "Annotations", x.Annotations)
		k.line("", "")
		k.line("", "Data\n====")
		keys := make([]string, 0, len(x.Data))
		for key := range x.Data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			k.line("", key+":\n----\n"+x.Data[key]+"\n")
		}
		k.line("", "\nBinaryData\n====")
		for key, v := range x.BinaryData {
			k.line(key, fmt.Sprintf("%d bytes", len(v)))
		}
	case *appsv1.Deployment:
		describeDeployment(k, x)
	case *corev1.Namespace:
		mapLines(k, "Labels", x.Labels)
		mapLines(k, "Annotations", x.Annotations)
		k.line("Status", x.Status.Phase)
	default:
		mapLines(k, "Labels", o.GetLabels())
		mapLines(k, "Annotations", o.GetAnnotations())
	}
	k.flush()
	if kind.Resource == "events" {
		return nil
	}
	return describeEvents(ctx, w, c, kind, o)
}

func describePod(k *kv, p *corev1.Pod) {
	prio := int32(0)
	if p.Spec.Priority != nil {
		prio = *p.Spec.Priority
	}
	k.line("Priority", prio)
	k.line("Service Account", p.Spec.ServiceAccountName)
	k.line("Node", orNone(p.Spec.NodeName))
	if p.Status.StartTime != nil {
		k.line("Start Time", p.Status.StartTime.Time.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	mapLines(k, "Labels", p.Labels)
	mapLines(k, "Annotations", p.Annotations)

	if p.DeletionTimestamp != nil {
		k.line("Status", fmt.Sprintf("Terminating (lasts %s)", age(*p.DeletionTimestamp)))
		if p.DeletionGracePeriodSeconds != nil {
			k.line("Termination Grace Period", fmt.Sprintf("%ds", *p.DeletionGracePeriodSeconds))
		}
	} else {
		k.line("Status", p.Status.Phase)
	}
	if p.Status.Reason != "" {
		k.line("Reason", p.Status.Reason)
	}
	if p.Status.Message != "" {
		k.line("Message", p.Status.Message)
	}

	k.line("IP", p.Status.PodIP)
	var ips []string
	for _, ip := range p.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	k.line("IPs", orNone(strings.Join(ips, ",")))
	statuses := map[string]corev1.ContainerStatus{}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		statuses[cs.Name] = cs
	}
	containers := func(title string, cs []corev1.Container) {
		if len(cs) == 0 {
			return
		}
		k.line(title, "")
		for _, c := range cs {
			k.indent = "  "
			k.line(c.Name, "")
			k.indent = "    "
			st, ok := statuses[c.Name]
			if ok && st.ContainerID != "" {
				k.line("Container ID", st.ContainerID)
			}
			k.line("Image", c.Image)
			if ok {
				k.line("Image ID", st.ImageID)
			}
			if len(c.Ports) == 0 {
				k.line("Port", "<none>")
				k.line("Host Port", "<none>")
			}
			for _, port := range c.Ports {
				k.line("Port", fmt.Sprintf("%d/%s", port.ContainerPort, port.Protocol))
				k.line("Host Port", fmt.Sprintf("%d/%s", port.HostPort, port.Protocol))
			}
			if len(c.Command) > 0 {
				k.line("Command", "")
				for _, a := range c.Command {
					k.line("", "  "+a)
				}
			}
			if len(c.Args) > 0 {
				k.line("Args", "")
				for _, a := range c.Args {
					k.line("", "  "+a)
				}
			}
			if ok {
				describeState(k, "State", st.State)
				if st.LastTerminationState != (corev1.ContainerState{}) {
					describeState(k, "Last State", st.LastTerminationState)
				}
				k.line("Ready", st.Ready)
				k.line("Restart Count", st.RestartCount)
			} else {
				k.line("State", "Waiting")
				k.line("Ready", false)
				k.line("Restart Count", 0)
			}
			if len(c.Env) == 0 && len(c.EnvFrom) == 0 {
				k.line("Environment", "<none>")
			} else {
				k.line("Environment", "")
				for _, e := range c.Env {
					v := e.Value
					if f := e.ValueFrom; f != nil {
						switch {
						case f.SecretKeyRef != nil:
							v = fmt.Sprintf("<set to the key '%s' in secret '%s'>", f.SecretKeyRef.Key, f.SecretKeyRef.Name)
						case f.ConfigMapKeyRef != nil:
							v = fmt.Sprintf("<set to the key '%s' of config map '%s'>", f.ConfigMapKeyRef.Key, f.ConfigMapKeyRef.Name)
						case f.FieldRef != nil:
							v = fmt.Sprintf(" (%s:%s)", f.FieldRef.APIVersion, f.FieldRef.FieldPath)
						}
					}
					k.line("  "+e.Name, v)
				}
			}
			if len(c.VolumeMounts) == 0 {
				k.line("Mounts", "<none>")
			} else {
				k.line("Mounts", "")
				for _, m := range c.VolumeMounts {
					mode := "rw"
					if m.ReadOnly {
						mode = "ro"
					}
					k.line("", fmt.Sprintf("  %s from %s (%s)", m.MountPath, m.Name, mode))
				}
			}
		}
		k.indent = ""
	}
	containers("Init Containers", p.Spec.InitContainers)
	containers("Containers", p.Spec.Containers)
	if len(p.Status.Conditions) > 0 {
		k.line("Conditions", "")
		k.line("", "  Type\tStatus")
		for _, c := range p.Status.Conditions {
			k.line("", fmt.Sprintf("  %s\t%s", c.Type, c.Status))
		}
	}
	if len(p.Spec.Volumes) == 0 {
		k.line("Volumes", "<none>")
	} else {
		k.line("Volumes", "")
		for _, v := range p.Spec.Volumes {
			k.line("", "  "+v.Name+":")
			k.line("", "    Type:\t"+volumeType(v.VolumeSource))
		}
	}
	k.line("QoS Class", p.Status.QOSClass)
	var sel []string
	for key, v := range p.Spec.NodeSelector {
		sel = append(sel, key+"="+v)
	}
	sort.Strings(sel)
	k.line("Node-Selectors", orNone(strings.Join(sel, ",")))
	var tols []string
	for _, t := range p.Spec.Tolerations {
		tols = append(tols, fmt.Sprintf("%s:%s op=%s", t.Key, t.Effect, t.Operator))
	}
	k.line("Tolerations", orNone(strings.Join(tols, "\n")))
}

func describeState(k *kv, title string, s corev1.ContainerState) {
	switch {
	case s.Running != nil:
		k.line(title, "Running")
		k.line("  Started", s.Running.StartedAt.Time.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	case s.Waiting != nil:
		k.line(title, "Waiting")
		k.line("  Reason", s.Waiting.Reason)
		if s.Waiting.Message != "" {
			k.line("  Message", s.Waiting.Message)
		}
	case s.Terminated != nil:
		k.line(title, "Terminated")
		k.line("  Reason", s.Terminated.Reason)
		k.line("  Exit Code", s.Terminated.ExitCode)
		k.line("  Started", s.Terminated.StartedAt.Time.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
		k.line("  Finished", s.Terminated.FinishedAt.Time.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	default:
		k.line(title, "Waiting")
	}
}

func volumeType(s corev1.VolumeSource) string {
	switch {
	case s.EmptyDir != nil:
		return fmt.Sprintf("EmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t%s", s.EmptyDir.Medium)
	case s.HostPath != nil:
		return fmt.Sprintf("HostPath (bare host directory volume)\n    Path:\t%s", s.HostPath.Path)
	case s.Secret != nil:
		return fmt.Sprintf("Secret (a volume populated by a Secret)\n    SecretName:\t%s", s.Secret.SecretName)
	case s.ConfigMap != nil:
		return fmt.Sprintf("ConfigMap (a volume populated by a ConfigMap)\n    Name:\t%s", s.ConfigMap.Name)
	case s.DownwardAPI != nil:
		return "DownwardAPI (a volume populated by information about the pod)"
	case s.Projected != nil:
		return "Projected (a volume that contains injected data from multiple sources)"
	}
	return "<unknown>"
}

// describeEvents prints the events about o, oldest first, as kubectl's
// describe does.
func describeEvents(ctx context.Context, w io.Writer, c *client.Client, kind objects.Kind, o objects.Object) error {
	ek, _ := objects.ForResource("events")
	sel := fmt.Sprintf("involvedObject.kind=%s,involvedObject.name=%s", kind.GVK.Kind, o.GetName())
	if kind.Namespaced {
		sel += ",involvedObject.namespace=" + o.GetNamespace()
	}
	ns := o.GetNamespace()
	if !kind.Namespaced {
		ns = ""
	}
	evs, _, err := c.List(ctx, ek, ns, client.ListOptions{FieldSelector: sel})
	if err != nil {
		return err
	}
	var mine []*corev1.Event
	for _, e := range evs {
		ev := e.(*corev1.Event)
		if ev.InvolvedObject.UID == "" || ev.InvolvedObject.UID == o.GetUID() {
			mine = append(mine, ev)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintln(w, "Events:  <none>")
		return nil
	}
	sort.SliceStable(mine, func(i, j int) bool { return eventTime(mine[i]).Time.Before(eventTime(mine[j]).Time) })
	fmt.Fprintln(w, "Events:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  Type\tReason\tAge\tFrom\tMessage")
	fmt.Fprintln(tw, "  ----\t------\t----\t----\t-------")
	for _, e := range mine {
		from := e.Source.Component
		if from == "" {
			from = e.ReportingController
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Type, e.Reason, eventLastSeen(e), from, strings.TrimSpace(e.Message))
	}
	return tw.Flush()
}
