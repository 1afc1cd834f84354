// Package client talks to the peapod daemon's API socket for the CLI.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/api"
)

// DefaultHost is where the daemon listens unless told otherwise.
const DefaultHost = "unix:///run/peapod/api.sock"

// Client is a connection to one daemon. The zero value is not usable; call New.
type Client struct {
	host string
	http *http.Client
	base string
}

// New returns a client for host, a unix:///path/to.sock address.
func New(host string) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" || u.Path == "" {
		return nil, fmt.Errorf("daemon address %q: want unix:///path/to/api.sock", host)
	}
	sock := u.Path
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	return &Client{host: host, http: &http.Client{Transport: tr}, base: "http://peapod"}, nil
}

// StatusError is an error the daemon answered with.
type StatusError struct {
	Status metav1.Status
}

func (e *StatusError) Error() string { return e.Status.Message }

// Reason returns the machine-readable reason of err when the daemon gave one.
func Reason(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return string(se.Status.Reason)
	}
	return ""
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the peapod daemon at %s (is `peapod daemon` running?): %w", c.host, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, decodeStatus(resp)
	}
	return resp, nil
}

func decodeStatus(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var st metav1.Status
	if err := json.Unmarshal(data, &st); err == nil && st.Message != "" {
		return &StatusError{Status: st}
	}
	return &StatusError{Status: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    int32(resp.StatusCode),
		Message: fmt.Sprintf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(data))),
	}}
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (*api.Version, error) {
	var v api.Version
	return &v, c.getJSON(ctx, api.VersionPath, &v)
}

// Images lists the images in the daemon's store.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var l api.ImageList
	if err := c.getJSON(ctx, api.ImagesPath, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// Image returns one image by name, ID or digest.
func (c *Client) Image(ctx context.Context, name string) (*api.Image, error) {
	var img api.Image
	return &img, c.getJSON(ctx, api.ImagesPath+"/"+url.PathEscape(name), &img)
}

// RemoveImage removes an image (or one of its names) from the store.
func (c *Client) RemoveImage(ctx context.Context, name string) error {
	resp, err := c.do(ctx, http.MethodDelete, api.ImagesPath+"/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Pull asks the daemon to pull an image and calls progress for every event
// the daemon streams back.
func (c *Client) Pull(ctx context.Context, req api.PullRequest, progress func(api.PullEvent)) (*api.Image, error) {
	resp, err := c.do(ctx, http.MethodPost, api.PullPath, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		var ev api.PullEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("pull %s: bad answer from daemon: %w", req.Image, err)
		}
		switch {
		case ev.Error != "":
			return nil, &StatusError{Status: metav1.Status{Status: metav1.StatusFailure, Message: ev.Error, Reason: metav1.StatusReason(ev.Reason)}}
		case ev.Image != nil:
			return ev.Image, nil
		case progress != nil:
			progress(ev)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pull %s: %w", req.Image, err)
	}
	return nil, fmt.Errorf("pull %s: the daemon closed the stream without a result", req.Image)
}

// Login checks a credential against a registry through the daemon.
func (c *Client) Login(ctx context.Context, req api.LoginRequest) error {
	resp, err := c.do(ctx, http.MethodPost, api.LoginPath, req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
