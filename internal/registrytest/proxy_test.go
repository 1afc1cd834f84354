package registrytest

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// getBlob fetches a blob through the proxy and returns its status.
func getBlob(ctx context.Context, host, repo, digest string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/"+repo+"/blobs/"+digest, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

func TestProxyHoldsABlobUntilReleased(t *testing.T) {
	r := Start(t, Options{})
	img := testImage(t)
	if err := r.Push(t.Context(), "app:v1", img); err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, r.Host, ProxyOptions{})
	via := &Registry{Host: p.Host, transport: r.transport}
	layers, _ := img.Layers()
	held, _ := layers[0].Digest()
	other, _ := layers[1].Digest()

	arrived := p.Hold(held.String())
	if again := p.Hold(held.String()); again != arrived {
		t.Error("holding a held digest again gave a different channel")
	}
	done := make(chan error, 1)
	go func() {
		_, err := pull(t, via, "app:v1", nil)
		done <- err
	}()
	select {
	case <-arrived:
	case err := <-done:
		t.Fatalf("pull finished (err = %v) while one of its blobs was held", err)
	}
	// While the held GET waits, other blobs pass: whole round trips
	// through the same proxy and registry that started after it finish,
	// and it still has no answer and has not reached the registry.
	for range 3 {
		if status, err := getBlob(t.Context(), p.Host, "app", other.String()); err != nil || status != http.StatusOK {
			t.Fatalf("GET of a blob that is not held: %d, %v", status, err)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("pull finished (err = %v) while one of its blobs was held", err)
	default:
	}
	if strings.Contains(r.Log(), "GET /v2/app/blobs/"+held.String()) {
		t.Error("the held blob GET reached the registry before Release")
	}

	p.Release(held.String())
	if err := <-done; err != nil {
		t.Fatalf("pull after Release: %v", err)
	}
	if n := p.BlobGets(held.String()); n != 1 {
		t.Errorf("BlobGets(held) = %d, want 1", n)
	}
	// Released stays released; releasing again is harmless.
	p.Release(held.String())
	if status, err := getBlob(t.Context(), p.Host, "app", held.String()); err != nil || status != http.StatusOK {
		t.Fatalf("GET after Release: %d, %v", status, err)
	}
}

func TestProxyResetReleasesAndAbandonedHoldsEnd(t *testing.T) {
	r := Start(t, Options{})
	img := testImage(t)
	if err := r.Push(t.Context(), "app:v1", img); err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, r.Host, ProxyOptions{})
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()

	// A client that gives up while held gets its own context error.
	arrived := p.Hold(d.String())
	ctx, cancel := context.WithCancel(t.Context())
	abandoned := make(chan error, 1)
	go func() {
		_, err := getBlob(ctx, p.Host, "app", d.String())
		abandoned <- err
	}()
	<-arrived
	cancel()
	if err := <-abandoned; err == nil {
		t.Error("a cancelled GET of a held blob succeeded")
	}

	// Reset lets a waiting request through.
	d2, _ := layers[1].Digest()
	arrived = p.Hold(d2.String())
	got := make(chan int, 1)
	go func() {
		status, err := getBlob(t.Context(), p.Host, "app", d2.String())
		if err != nil {
			t.Error(err)
		}
		got <- status
	}()
	select {
	case <-arrived:
	case status := <-got:
		t.Fatalf("GET of a held blob answered %d before Reset", status)
	}
	p.Reset()
	if status := <-got; status != http.StatusOK {
		t.Errorf("GET after Reset: %d", status)
	}
}
