package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The conformance kit's scripts, run with the kit's own defaults except
// for the sample counts and, for peapod, which processes are its per-pod
// helpers in measure-crictl.sh's name-based table (conmon serving this
// daemon); pod-overhead.sh needs no names.

// crictlResult is measure-crictl.sh for one runtime.
type crictlResult struct {
	Runtime string
	Wall    []float64 // crictl runp + create + start, ms, 3 crictl processes included
	Summary string    // the script's own summary (median/p90, memory table)
	Command string
}

func measureCrictl(ctx context.Context, kit string, d daemon, iter, pods int, out string) (crictlResult, error) {
	res := crictlResult{Runtime: d.name()}
	env := []string{fmt.Sprintf("ITER=%d", iter), fmt.Sprintf("PODS=%d", pods), fmt.Sprintf("RUNTIME_PID=%d", d.pid())}
	if p, ok := d.(*peapodDaemon); ok {
		env = append(env, "SHIM_MATCH=conmon .*--exit-dir "+filepath.Join(p.State, "runtime", "exits")+"( |$)")
	}
	res.Command = strings.Join(env, " ") + " measure-crictl.sh " + d.endpoint() + " OUT"
	cmd := exec.CommandContext(ctx, filepath.Join(kit, "measure-crictl.sh"), d.endpoint(), out)
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	res.Summary = strings.TrimSpace(string(b))
	if err != nil {
		return res, fmt.Errorf("measure-crictl.sh: %w: %s", err, b)
	}
	data, err := os.ReadFile(filepath.Join(out, "pod-start-ms.txt"))
	if err != nil {
		return res, err
	}
	for _, f := range strings.Fields(string(data)) {
		if v, err := strconv.ParseFloat(f, 64); err == nil {
			res.Wall = append(res.Wall, v)
		}
	}
	return res, nil
}

// overheadResult is pod-overhead.sh for one runtime.
type overheadResult struct {
	perPod
	Output, Command string
}

var overheadRE = regexp.MustCompile(`overhead/pod: rss=(-?\d+) pss=(-?\d+) daemon_growth=(-?\d+)`)
var procsRE = regexp.MustCompile(`processes added \(not workload\): (\d+) for (\d+) pods`)

func podOverhead(ctx context.Context, kit string, d daemon, n int, out string) (overheadResult, error) {
	res := overheadResult{perPod: perPod{Runtime: d.name(), Pods: n}}
	args := []string{d.endpoint(), strconv.Itoa(n), strconv.Itoa(d.pid())}
	res.Command = "pod-overhead.sh " + strings.Join(args, " ")
	b, err := exec.CommandContext(ctx, filepath.Join(kit, "pod-overhead.sh"), args...).CombinedOutput()
	res.Output = strings.TrimSpace(string(b))
	_ = os.WriteFile(out, b, 0o644)
	if err != nil {
		return res, fmt.Errorf("pod-overhead.sh: %w: %s", err, b)
	}
	m := overheadRE.FindStringSubmatch(res.Output)
	if m == nil {
		return res, fmt.Errorf("pod-overhead.sh: no summary line in %q", res.Output)
	}
	res.RSSKiB, _ = strconv.Atoi(m[1])
	res.PSSKiB, _ = strconv.Atoi(m[2])
	res.GrowKiB, _ = strconv.Atoi(m[3])
	if m := procsRE.FindStringSubmatch(res.Output); m != nil {
		res.Procs, _ = strconv.Atoi(m[1])
	}
	return res, nil
}

// critestResult is run-bench.sh (critest -benchmark) for one runtime.
type critestResult struct {
	Runtime string
	ExitErr string
	// P50 by operation name (CreatePod, StartContainer, ...), ms.
	P50     map[string]float64
	Summary string
	Command string
}

func critestBench(ctx context.Context, kit string, d daemon, n int, out string) critestResult {
	res := critestResult{Runtime: d.name(), P50: map[string]float64{}}
	env := []string{fmt.Sprintf("N=%d", n), "LIST_IMAGES=" + busyboxImage}
	res.Command = strings.Join(env, " ") + " run-bench.sh " + d.endpoint() + " OUT"
	cmd := exec.CommandContext(ctx, filepath.Join(kit, "run-bench.sh"), d.endpoint(), out)
	cmd.Env = append(os.Environ(), env...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		res.ExitErr = err.Error()
	}
	sum, rerr := os.ReadFile(filepath.Join(out, "latency-summary.txt"))
	if rerr != nil {
		sum = b
	}
	res.Summary = strings.TrimSpace(string(sum))
	for _, line := range strings.Split(res.Summary, "\n") {
		f := strings.Fields(line)
		if len(f) != 8 || f[0] == "file" {
			continue
		}
		if v, err := strconv.ParseFloat(f[4], 64); err == nil {
			key := f[1]
			if _, dup := res.P50[key]; dup {
				key = f[0] + "/" + f[1]
			}
			res.P50[key] = v
		}
	}
	return res
}
