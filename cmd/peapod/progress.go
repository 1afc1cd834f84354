package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/peapod/peapod/internal/api"
)

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress redraws one line per layer on a terminal, as docker pull does.
type progress struct {
	w     io.Writer
	order []string
	lines map[string]string
	drawn int
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, lines: map[string]string{}}
}

func (p *progress) update(ev api.PullEvent) {
	if ev.Layer == "" {
		return
	}
	if _, ok := p.lines[ev.Layer]; !ok {
		p.order = append(p.order, ev.Layer)
	}
	line := fmt.Sprintf("%s: %s", shortID(ev.Layer), ev.State)
	if ev.Total > 0 && ev.State != "done" && ev.State != "already exists" {
		line += fmt.Sprintf(" %s/%s", humanSize(ev.Current), humanSize(ev.Total))
	}
	p.lines[ev.Layer] = line
	p.redraw()
}

func (p *progress) redraw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	for _, l := range p.order {
		fmt.Fprintf(&b, "\x1b[2K%s\n", p.lines[l])
	}
	p.drawn = len(p.order)
	_, _ = io.WriteString(p.w, b.String())
}

func (p *progress) finish() {}
