package main

// Output of the object commands in kubectl's formats: tables with
// kubectl's columns, yaml, json, name and a jsonpath subset.

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/peapod/peapod/internal/objects"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) }

// age is kubectl's AGE column: "5s", "3m2s", "4h", "12d".
func age(t metav1.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// columns returns the header of a kind's table.
func columns(k objects.Kind, wide bool) []string {
	switch k.Resource {
	case "pods":
		if wide {
			return []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"}
		}
		return []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}
	case "secrets":
		return []string{"NAME", "TYPE", "DATA", "AGE"}
	case "configmaps":
		return []string{"NAME", "DATA", "AGE"}
	case "namespaces":
		return []string{"NAME", "STATUS", "AGE"}
	case "events":
		return []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"}
	case "deployments":
		return deploymentColumns(wide)
	}
	return []string{"NAME", "AGE"}
}

// row returns an object's cells in the order of columns.
func row(o objects.Object, wide bool) []string {
	switch x := o.(type) {
	case *corev1.Pod:
		ready, status, restarts := PodStatus(x)
		r := []string{x.Name, ready, status, restarts, age(x.CreationTimestamp)}
		if wide {
			ip := x.Status.PodIP
			if ip == "" {
				ip = "<none>"
			}
			node := x.Spec.NodeName
			if node == "" {
				node = "<none>"
			}
			nom := x.Status.NominatedNodeName
			if nom == "" {
				nom = "<none>"
			}
			gates := "<none>"
			if n := len(x.Spec.ReadinessGates); n > 0 {
				gates = fmt.Sprintf("0/%d", n)
			}
			r = append(r, ip, node, nom, gates)
		}
		return r
	case *corev1.Secret:
		return []string{x.Name, string(x.Type), strconv.Itoa(len(x.Data) + len(x.StringData)), age(x.CreationTimestamp)}
	case *corev1.ConfigMap:
		return []string{x.Name, strconv.Itoa(len(x.Data) + len(x.BinaryData)), age(x.CreationTimestamp)}
	case *corev1.Namespace:
		return []string{x.Name, string(x.Status.Phase), age(x.CreationTimestamp)}
	case *appsv1.Deployment:
		return deploymentRow(x, wide)
	case *corev1.Event:
		return []string{eventLastSeen(x), x.Type, x.Reason, strings.ToLower(x.InvolvedObject.Kind) + "/" + x.InvolvedObject.Name, strings.TrimSpace(x.Message)}
	}
	return []string{o.GetName(), age(o.GetCreationTimestamp())}
}

func eventTime(e *corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.NewTime(e.EventTime.Time)
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp
	}
	return e.CreationTimestamp
}

// eventLastSeen is kubectl's LAST SEEN: "5m", or "5m (x3 over 10m)".
func eventLastSeen(e *corev1.Event) string {
	last := age(eventTime(e))
	if e.Count > 1 && !e.FirstTimestamp.IsZero() {
		return fmt.Sprintf("%s (x%d over %s)", last, e.Count, age(e.FirstTimestamp))
	}
	return last
}

// PodStatus computes kubectl's READY, STATUS and RESTARTS columns from a
// pod's status, following kubectl's pod printer (Kubernetes 1.32–1.34):
//
//   - READY counts the app containers plus the sidecars (init containers
//     with restartPolicy Always), since both serve the pod for its life;
//     a started sidecar counts as ready when its status says so.
//   - While the pod initializes, completed init containers and started
//     sidecars are passed over, and the first other one names the status:
//     Init:REASON for a failure or a waiting reason, else Init:N/M.
//   - Once the pod is initialized (or its Initialized condition is true,
//     which keeps a completed pod whose sidecars were stopped with a
//     non-zero code from showing Init:Error), the app containers name it,
//     the first one in spec order winning: a waiting or terminated reason
//     (ErrImagePull, CrashLoopBackOff, Completed, ...), Signal:N or
//     ExitCode:N; Completed turns back into Running or NotReady, by the
//     Ready condition, while an app container still runs ready.
//   - RESTARTS then sums the app containers' and sidecars' restarts only
//     (a regular init container's retries no longer matter), with the
//     age of the latest one.
//   - A pod being deleted shows Terminating unless it already finished,
//     and Unknown when its node was lost.
func PodStatus(p *corev1.Pod) (ready, status, restarts string) {
	total := len(p.Spec.Containers)
	sidecars := map[string]bool{}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			sidecars[c.Name] = true
			total++
		}
	}
	reason := string(p.Status.Phase)
	if p.Status.Reason != "" {
		reason = p.Status.Reason
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
			reason = corev1.PodReasonSchedulingGated
		}
	}

	// all counts every container's restarts; kept only the sidecars',
	// which stay in RESTARTS once the pod is past its init phase.
	var all, kept restartTally
	readyN := 0
	initializing := false
	for i, cs := range p.Status.InitContainerStatuses {
		all.add(cs)
		if sidecars[cs.Name] {
			kept.add(cs)
		}
		switch {
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0:
			continue
		case sidecars[cs.Name] && cs.Started != nil && *cs.Started:
			if cs.Ready {
				readyN++
			}
			continue
		case cs.State.Terminated != nil:
			reason = "Init:" + terminatedReason(cs.State.Terminated)
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "" && cs.State.Waiting.Reason != "PodInitializing":
			reason = "Init:" + cs.State.Waiting.Reason
		default:
			reason = fmt.Sprintf("Init:%d/%d", i, len(p.Spec.InitContainers))
		}
		initializing = true
		break
	}
	tally := all
	if !initializing || podCondition(p, corev1.PodInitialized) {
		tally = kept
		running := false
		for i := len(p.Status.ContainerStatuses) - 1; i >= 0; i-- {
			cs := p.Status.ContainerStatuses[i]
			tally.add(cs)
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
				reason = cs.State.Waiting.Reason
			case cs.State.Terminated != nil:
				reason = terminatedReason(cs.State.Terminated)
			case cs.Ready && cs.State.Running != nil:
				running = true
				readyN++
			}
		}
		if reason == "Completed" && running {
			reason = "NotReady"
			if podCondition(p, corev1.PodReady) {
				reason = "Running"
			}
		}
	}

	if p.DeletionTimestamp != nil {
		switch {
		case p.Status.Reason == "NodeLost":
			reason = "Unknown"
		case p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed:
			reason = "Terminating"
		}
	}
	restarts = strconv.Itoa(int(tally.n))
	if tally.n > 0 && !tally.last.IsZero() {
		restarts += fmt.Sprintf(" (%s ago)", duration.HumanDuration(time.Since(tally.last)))
	}
	return fmt.Sprintf("%d/%d", readyN, total), reason, restarts
}

// restartTally sums restart counts and remembers when the latest
// restarted container last ended, for "3 (5m ago)".
type restartTally struct {
	n    int32
	last time.Time
}

func (r *restartTally) add(cs corev1.ContainerStatus) {
	r.n += cs.RestartCount
	if t := cs.LastTerminationState.Terminated; t != nil && t.FinishedAt.After(r.last) {
		r.last = t.FinishedAt.Time
	}
}

// terminatedReason is a terminated container's reason, or Signal:N or
// ExitCode:N when the runtime gave none.
func terminatedReason(t *corev1.ContainerStateTerminated) string {
	switch {
	case t.Reason != "":
		return t.Reason
	case t.Signal != 0:
		return fmt.Sprintf("Signal:%d", t.Signal)
	}
	return fmt.Sprintf("ExitCode:%d", t.ExitCode)
}

// podCondition reports whether the pod's condition of type t is True.
func podCondition(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// printTable writes objects as kubectl's table; withNS adds NAMESPACE
// first (-A).
func printTable(w io.Writer, k objects.Kind, items []objects.Object, wide, withNS, header bool) {
	tw := newTable(w)
	if header {
		h := columns(k, wide)
		if withNS {
			h = append([]string{"NAMESPACE"}, h...)
		}
		fmt.Fprintln(tw, strings.Join(h, "\t"))
	}
	if k.Resource == "events" {
		sort.SliceStable(items, func(i, j int) bool {
			return eventTime(items[i].(*corev1.Event)).Time.Before(eventTime(items[j].(*corev1.Event)).Time)
		})
	}
	for _, o := range items {
		r := row(o, wide)
		if withNS {
			r = append([]string{o.GetNamespace()}, r...)
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// asList wraps objects in a v1 List, as kubectl prints several objects.
func asList(items []objects.Object) map[string]any {
	if items == nil {
		items = []objects.Object{}
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{"resourceVersion": ""}}
}

// printObjects prints in one of the -o formats other than tables.
func printObjects(w io.Writer, format string, items []objects.Object, single bool) error {
	var v any = asList(items)
	if single && len(items) == 1 {
		v = items[0]
	}
	switch {
	case format == "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case format == "yaml":
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	case format == "name":
		for _, o := range items {
			k, _ := objects.ForObject(o)
			fmt.Fprintln(w, ref(k, o.GetName()))
		}
		return nil
	case strings.HasPrefix(format, "jsonpath="):
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			return err
		}
		s, err := jsonPath(strings.TrimPrefix(format, "jsonpath="), doc)
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(w, s)
		return err
	}
	return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,jsonpath,name,wide,yaml", format)
}

// jsonPath evaluates the subset of kubectl's JSONPath templates that
// covers everyday use: literal text, {.a.b}, {.items[0].x}, {.items[*].x},
// {['key.with.dots']}, {"\n"}. Several results are joined by spaces.
func jsonPath(tmpl string, doc any) (string, error) {
	var b strings.Builder
	for len(tmpl) > 0 {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("error parsing jsonpath %s: unclosed action", tmpl)
		}
		expr := strings.TrimSpace(tmpl[i+1 : i+j])
		tmpl = tmpl[i+j+1:]
		if unq, err := strconv.Unquote(expr); err == nil {
			b.WriteString(unq)
			continue
		}
		vals, err := evalPath(expr, []any{doc})
		if err != nil {
			return "", err
		}
		for n, v := range vals {
			if n > 0 {
				b.WriteByte(' ')
			}
			switch x := v.(type) {
			case string:
				b.WriteString(x)
			default:
				j, _ := json.Marshal(x)
				b.Write(j)
			}
		}
	}
	return b.String(), nil
}

func evalPath(expr string, cur []any) ([]any, error) {
	expr = strings.TrimPrefix(expr, "$")
	for len(expr) > 0 {
		switch expr[0] {
		case '.':
			expr = expr[1:]
			end := strings.IndexAny(expr, ".[")
			if end < 0 {
				end = len(expr)
			}
			name := expr[:end]
			expr = expr[end:]
			if name == "" {
				continue
			}
			cur = field(cur, name)
		case '[':
			end := strings.IndexByte(expr, ']')
			if end < 0 {
				return nil, fmt.Errorf("error parsing jsonpath: unterminated [")
			}
			sel := expr[1:end]
			expr = expr[end+1:]
			if q, err := strconv.Unquote(strings.ReplaceAll(sel, "'", "\"")); err == nil {
				cur = field(cur, q)
				continue
			}
			var next []any
			for _, c := range cur {
				arr, ok := c.([]any)
				if !ok {
					continue
				}
				if sel == "*" {
					next = append(next, arr...)
					continue
				}
				n, err := strconv.Atoi(sel)
				if err != nil {
					return nil, fmt.Errorf("error parsing jsonpath: unsupported index [%s]", sel)
				}
				if n < 0 {
					n += len(arr)
				}
				if n < 0 || n >= len(arr) {
					return nil, fmt.Errorf("array index out of bounds: index %s, length %d", sel, len(arr))
				}
				next = append(next, arr[n])
			}
			cur = next
		default:
			return nil, fmt.Errorf("error parsing jsonpath: unrecognized character in action: %q", expr[0])
		}
	}
	return cur, nil
}

func field(cur []any, name string) []any {
	var next []any
	for _, c := range cur {
		if m, ok := c.(map[string]any); ok {
			if v, ok := m[name]; ok {
				next = append(next, v)
			}
		}
	}
	return next
}
