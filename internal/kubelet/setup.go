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

// ApplyTestSettings reads TestBackOffEnv into opts; an unset variable
// changes nothing.
func ApplyTestSettings(opts *Options) error {
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
