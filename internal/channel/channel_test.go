package channel

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	big := bytes.Repeat([]byte("x"), MaxPayload+10)
	if _, err := w.Stream(Stdout).Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Stream(Stderr).Write(big); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFrame(Close, []byte{Stdin}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		ch byte
		n  int
	}{{Stdout, 5}, {Stderr, MaxPayload}, {Stderr, 10}, {Close, 1}}
	for i, wf := range want {
		ch, p, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if ch != wf.ch || len(p) != wf.n {
			t.Errorf("frame %d: channel %d, %d bytes; want channel %d, %d bytes", i, ch, len(p), wf.ch, wf.n)
		}
	}
	if _, _, err := ReadFrame(&buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameRejects(t *testing.T) {
	for name, in := range map[string][]byte{
		"truncated header":  {1, 0, 0},
		"truncated payload": {1, 0, 0, 0, 5, 'a'},
		"oversized":         {1, 0xff, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := ReadFrame(bytes.NewReader(in))
			if err == nil || errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("ReadFrame = %v, want an error other than a clean EOF", err)
			}
		})
	}
}
