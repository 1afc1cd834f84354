package backoff

import (
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestKubeletDefaults(t *testing.T) {
	if ImagePullInitial != 10*time.Second || ImagePullMax != 300*time.Second {
		t.Errorf("image pull back-off %v..%v, want 10s..300s", ImagePullInitial, ImagePullMax)
	}
	if CrashLoopInitial != 10*time.Second || CrashLoopMax != 5*time.Minute {
		t.Errorf("crash loop back-off %v..%v, want 10s..5m", CrashLoopInitial, CrashLoopMax)
	}
	b := New(CrashLoopInitial, CrashLoopMax, nil)
	if b.resetAfter() != 10*time.Minute {
		t.Errorf("reset after %v, want 10m of good running", b.resetAfter())
	}
}

func TestDoublingUpToMax(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := New(10*time.Second, 300*time.Second, clk)
	want := []time.Duration{10, 20, 40, 80, 160, 300, 300}
	for i, w := range want {
		got := b.Next("k", clk.Now())
		if got != w*time.Second {
			t.Fatalf("failure %d: delay %v, want %v", i+1, got, w*time.Second)
		}
		clk.Step(got)
	}
}

func TestInBackOff(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := New(10*time.Second, 300*time.Second, clk)
	if b.InBackOffSinceUpdate("k", clk.Now()) || b.InBackOffSince("k", clk.Now()) {
		t.Fatal("an unknown key is not backing off")
	}
	finished := clk.Now()
	b.Next("k", finished)
	clk.Step(9 * time.Second)
	if !b.InBackOffSince("k", finished) || !b.InBackOffSinceUpdate("k", clk.Now()) {
		t.Fatal("9s after a failure with a 10s delay: still backing off")
	}
	if r := b.Remaining("k", finished); r != time.Second {
		t.Errorf("remaining %v, want 1s", r)
	}
	clk.Step(time.Second)
	if b.InBackOffSince("k", finished) || b.InBackOffSinceUpdate("k", clk.Now()) {
		t.Fatal("10s after a failure with a 10s delay: done")
	}
}

// A container that ran for more than 10 minutes before failing again starts
// the back-off over (kubelet: twice the maximum since the last failure).
func TestResetAfterQuietPeriod(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := New(10*time.Second, 5*time.Minute, clk)
	for range 5 {
		b.Next("k", clk.Now())
		clk.Step(time.Minute)
	}
	if got := b.Get("k"); got != 160*time.Second {
		t.Fatalf("after 5 quick failures the delay is %v, want 160s", got)
	}
	clk.Step(9 * time.Minute) // 10 minutes since the last failure: not yet more
	if got := b.Next("k", clk.Now()); got != 300*time.Second {
		t.Fatalf("failure exactly 10m after the last: %v, want 300s (not reset yet)", got)
	}
	clk.Step(10*time.Minute + time.Second)
	if b.InBackOffSince("k", clk.Now()) {
		t.Fatal("a key quiet for over 10 minutes is not backing off")
	}
	if got := b.Next("k", clk.Now()); got != 10*time.Second {
		t.Fatalf("failure after 10m of running: %v, want a fresh 10s", got)
	}
	clk.Step(time.Hour)
	b.GC()
	if b.Get("k") != 0 {
		t.Fatal("GC keeps a key quiet for an hour")
	}
}

func TestDeletePrefix(t *testing.T) {
	b := New(time.Second, time.Minute, nil)
	b.Next("uid1_a", time.Now())
	b.Next("uid1_b", time.Now())
	b.Next("uid2_a", time.Now())
	b.DeletePrefix("uid1_")
	if b.Get("uid1_a") != 0 || b.Get("uid1_b") != 0 || b.Get("uid2_a") == 0 {
		t.Fatal("DeletePrefix removed the wrong keys")
	}
}
