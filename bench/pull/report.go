package main

import (
	"fmt"
	"slices"
	"strings"
)

// report is everything one bench run found.
type report struct {
	Date     string
	Machine  map[string]string
	Image    imageFacts
	Command  string
	Commit   string
	Versions map[string]string
	Order    []string // runtimes, in the order of -only
	Results  []result
}

// stat is the median, minimum and maximum of one measure.
type stat struct{ med, min, max float64 }

func summarise(xs []float64) stat {
	if len(xs) == 0 {
		return stat{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med: med, min: s[0], max: s[len(s)-1]}
}

// runtimes are the measured runtimes in the order -only named them.
func (r *report) runtimes() []string {
	var names []string
	for _, name := range r.Order {
		if slices.ContainsFunc(r.Results, func(x result) bool { return x.Runtime == name }) {
			names = append(names, name)
		}
	}
	return names
}

func (r *report) measure(runtime string, f func(result) float64) stat {
	var xs []float64
	for _, res := range r.Results {
		if res.Runtime == runtime {
			xs = append(xs, f(res))
		}
	}
	return summarise(xs)
}

// markdown renders the summary table: median (min–max) per runtime.
func (r *report) markdown() string {
	var b strings.Builder
	names := r.runtimes()
	n := 0
	for _, res := range r.Results {
		if res.Runtime == names[0] {
			n++
		}
	}
	fmt.Fprintf(&b, "Image: %d layers, %d files, %.1f MiB unpacked, %.1f MiB gzip; %d runs each, median (min–max).\n\n",
		r.Image.Layers, r.Image.Files, mib(r.Image.UncompressedBytes), mib(r.Image.CompressedBytes), n)
	b.WriteString("| |")
	for _, name := range names {
		fmt.Fprintf(&b, " %s |", name)
	}
	b.WriteString("\n|---|")
	for range names {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	rows := []struct {
		label string
		f     func(result) float64
		unit  string
		prec  int
	}{
		{"pull wall time", func(x result) float64 { return x.Wall.Seconds() }, "s", 2},
		{"daemon peak RSS (VmHWM)", func(x result) float64 { return float64(x.PeakRSSKiB) / 1024 }, "MiB", 1},
		{"daemon CPU time during pull", func(x result) float64 { return x.CPU.Seconds() }, "s", 2},
		{"daemon RSS before pull", func(x result) float64 { return float64(x.IdleRSSKiB) / 1024 }, "MiB", 1},
		{"disk used after pull", func(x result) float64 { return mib(x.DiskBytes) }, "MiB", 0},
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s |", row.label)
		for _, name := range names {
			s := r.measure(name, row.f)
			fmt.Fprintf(&b, " %.*f %s (%.*f–%.*f) |", row.prec, s.med, row.unit, row.prec, s.min, row.prec, s.max)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, name := range names {
		fmt.Fprintf(&b, "- %s: %s\n", name, r.Versions[name])
	}
	fmt.Fprintf(&b, "- machine: %s, %s CPUs (%s), %s, kernel %s\n", r.Machine["os"], r.Machine["cpus"], r.Machine["cpu"], r.Machine["memory"], r.Machine["kernel"])
	fmt.Fprintf(&b, "- work directory: %s\n", r.Machine["work_fs"])
	fmt.Fprintf(&b, "- load average at start %s, at end %s (the machine may be shared)\n", r.Machine["loadavg_start"], r.Machine["loadavg_end"])
	fmt.Fprintf(&b, "- date: %s, peapod commit %s\n", r.Date, r.Commit)
	return b.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// raw is the JSON form of the report, with plain units.
func (r *report) raw() any {
	type run struct {
		Runtime     string  `json:"runtime"`
		Run         int     `json:"run"`
		WallSeconds float64 `json:"wall_seconds"`
		PeakRSSKiB  int64   `json:"peak_rss_kib"`
		IdleRSSKiB  int64   `json:"idle_rss_kib"`
		CPUSeconds  float64 `json:"cpu_seconds"`
		DiskBytes   int64   `json:"disk_bytes"`
	}
	var runs []run
	for _, x := range r.Results {
		runs = append(runs, run{x.Runtime, x.Run, x.Wall.Seconds(), x.PeakRSSKiB, x.IdleRSSKiB, x.CPU.Seconds(), x.DiskBytes})
	}
	return map[string]any{
		"date":     r.Date,
		"machine":  r.Machine,
		"image":    r.Image,
		"command":  r.Command,
		"commit":   r.Commit,
		"versions": r.Versions,
		"runs":     runs,
	}
}
