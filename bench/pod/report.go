package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// report is everything one run measured.
type report struct {
	Date, Command, Commit string
	Machine               map[string]string
	Versions              map[string]string
	Order                 []string
	Pods, MemPods         int
	Raw                   string // directory with the scripts' raw output
	GRPC                  []grpcResult
	Crictl                []crictlResult
	Overhead              []overheadResult
	Scoped                []scopedResult
	Critest               []critestResult
}

func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Pod start and memory, %s (commit %s)\n\n", r.Date, r.Commit)
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	keys := make([]string, 0, len(r.Machine))
	for k := range r.Machine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Machine[k])
	}
	vk := make([]string, 0, len(r.Versions))
	for k := range r.Versions {
		vk = append(vk, k)
	}
	sort.Strings(vk)
	for _, k := range vk {
		fmt.Fprintf(&b, "- version %s: %s\n", k, r.Versions[k])
	}
	fmt.Fprintf(&b, "- raw output: %s\n\n", r.Raw)

	if len(r.GRPC) > 0 {
		fmt.Fprintf(&b, "## RunPodSandbox → container running, one Go CRI client (%d pods each, ms)\n\n", r.Pods)
		b.WriteString("| runtime | seccomp in request | total p50 | total p99 | RunPodSandbox p50 | CreateContainer p50 | StartContainer p50 | sum of p50s |\n|---|---|---|---|---|---|---|---|\n")
		for _, g := range r.GRPC {
			rp, cp, sp := pct(g.Run, 50), pct(g.Create, 50), pct(g.Start, 50)
			fmt.Fprintf(&b, "| %s | %s | **%.1f** | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
				g.Runtime, g.Seccomp, pct(g.Total, 50), pct(g.Total, 99), rp, cp, sp, rp+cp+sp)
		}
		b.WriteString("\n")
	}
	if len(r.Crictl) > 0 {
		b.WriteString("## measure-crictl.sh (crictl runp + create + start wall time, 3 crictl processes included, ms)\n\n")
		b.WriteString("| runtime | n | p50 | p99 | min | max |\n|---|---|---|---|---|---|\n")
		for _, c := range r.Crictl {
			s := slices.Clone(c.Wall)
			slices.Sort(s)
			if len(s) == 0 {
				fmt.Fprintf(&b, "| %s | 0 | | | | |\n", c.Runtime)
				continue
			}
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.0f | %.0f |\n", c.Runtime, len(s), pct(s, 50), pct(s, 99), s[0], s[len(s)-1])
		}
		b.WriteString("\n")
		for _, c := range r.Crictl {
			fmt.Fprintf(&b, "%s (`%s`):\n\n```\n%s\n```\n\n", c.Runtime, c.Command, c.Summary)
		}
	}
	if len(r.Overhead) > 0 {
		b.WriteString("## pod-overhead.sh (every process added per running 1-container pod, name-blind, KiB per pod)\n\n")
		b.WriteString(perPodHeader)
		for _, o := range r.Overhead {
			perPodRow(&b, o.perPod)
		}
		b.WriteString("\n")
		for _, o := range r.Overhead {
			fmt.Fprintf(&b, "%s (`%s`):\n\n```\n%s\n```\n\n", o.Runtime, o.Command, o.Output)
		}
	}
	if len(r.Scoped) > 0 {
		b.WriteString("## Processes added per pod, scoped to the runtime's own pods (name-blind, KiB per pod)\n\n")
		b.WriteString("Same count as pod-overhead.sh, restricted to processes in the pods' network namespaces, naming the daemon's root or state directory, or descending from one of those or from the daemon.\n\n")
		b.WriteString(perPodHeader)
		for _, o := range r.Scoped {
			perPodRow(&b, o.perPod)
		}
		b.WriteString("\n")
		for _, o := range r.Scoped {
			fmt.Fprintf(&b, "%s:\n\n```\n%s\n```\n\n", o.Runtime, strings.Join(o.List, "\n"))
		}
	}
	if len(r.Critest) > 0 {
		b.WriteString("## run-bench.sh (critest -benchmark, p50 ms)\n\n")
		ops := map[string]bool{}
		for _, c := range r.Critest {
			for k := range c.P50 {
				ops[k] = true
			}
		}
		names := make([]string, 0, len(ops))
		for k := range ops {
			names = append(names, k)
		}
		sort.Strings(names)
		b.WriteString("| operation |")
		for _, c := range r.Critest {
			fmt.Fprintf(&b, " %s |", c.Runtime)
		}
		b.WriteString("\n|---|")
		for range r.Critest {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, op := range names {
			fmt.Fprintf(&b, "| %s |", op)
			for _, c := range r.Critest {
				if v, ok := c.P50[op]; ok {
					fmt.Fprintf(&b, " %.2f |", v)
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
		for _, c := range r.Critest {
			status := "ok"
			if c.ExitErr != "" {
				status = "critest exit: " + c.ExitErr
			}
			fmt.Fprintf(&b, "%s (`%s`, %s):\n\n```\n%s\n```\n\n", c.Runtime, c.Command, status, c.Summary)
		}
	}
	return b.String()
}

const perPodHeader = "| runtime | pods | processes added | RSS/pod | PSS/pod | daemon growth/pod |\n|---|---|---|---|---|---|\n"

// perPodRow is one runtime's row of a memory-per-pod table.
func perPodRow(b *strings.Builder, o perPod) {
	fmt.Fprintf(b, "| %s | %d | %d | **%d** (%.2f MiB) | **%d** (%.2f MiB) | %d |\n", o.Runtime, o.Pods, o.Procs,
		o.RSSKiB, float64(o.RSSKiB)/1024, o.PSSKiB, float64(o.PSSKiB)/1024, o.GrowKiB)
}
