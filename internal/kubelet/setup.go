package kubelet

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/peapod/peapod/internal/image/keyring"
)

// TestBackOffEnv is the test setting that shortens the pod manager's
// back-offs: "<initial>,<max>" in Go duration syntax (e.g. "1s,4s") applies
// to image pull back-off and crash-loop back-off alike. It exists so that
// end-to-end tests can watch ImagePullBackOff and CrashLoopBackOff come and
// go in seconds; production daemons leave it unset and get kubelet's 10s
// doubling to 300s.
const TestBackOffEnv = "PEAPOD_TEST_BACKOFF"

// TestHousekeepingEnv is the test setting that shortens the housekeeping
// periods: a Go duration (e.g. "1s") used as the log rotation interval,
// the container and image GC periods and the minimum age of an image GC
// may remove (defaults 10s, 1m, 5m and 2m), so end-to-end tests can watch
// rotation and image GC happen. Production daemons leave it unset.
const TestHousekeepingEnv = "PEAPOD_TEST_HOUSEKEEPING"

// ApplyTestSettings reads TestBackOffEnv and TestHousekeepingEnv into
// opts; unset variables change nothing.
func ApplyTestSettings(opts *Options) error {
	if v := os.Getenv(TestHousekeepingEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a positive Go duration, e.g. \"1s\"", TestHousekeepingEnv, v)
		}
		opts.LogRotateInterval, opts.ContainerGCPeriod, opts.ImageGCPeriod, opts.ImageMinimumGCAge = d, d, d, d
	}
	v := os.Getenv(TestBackOffEnv)
	if v == "" {
		return nil
	}
	a, b, ok := strings.Cut(v, ",")
	initial, err1 := time.ParseDuration(strings.TrimSpace(a))
	maxD, err2 := time.ParseDuration(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || initial <= 0 || maxD < initial {
		return fmt.Errorf("%s=%q: want \"<initial>,<max>\" durations, e.g. \"1s,4s\"", TestBackOffEnv, v)
	}
	opts.ImagePullBackOffInitial, opts.ImagePullBackOffMax = initial, maxD
	opts.CrashLoopBackOffInitial, opts.CrashLoopBackOffMax = initial, maxD
	return nil
}

// NodeKeyringFromFiles returns a NodeKeyring that reads the node's auth
// files (config.json) at every pull, in order; a file that cannot be read
// is logged and skipped, as kubelet does.
func NodeKeyringFromFiles(paths []string, log *slog.Logger) func() *keyring.Keyring {
	return func() *keyring.Keyring {
		var ks []*keyring.Keyring
		for _, p := range paths {
			k, err := keyring.FromConfigFile(p)
			if err != nil {
				log.Warn("skipping node auth file", "path", p, "err", err)
				continue
			}
			ks = append(ks, k)
		}
		return keyring.Union(ks...)
	}
}
