package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Networks of the two daemons: their own bridges and subnets, clear of the
// conformance kit's (refctrd0, 10.77.0.0/24), bench/pull's and the tests'.
const (
	peapodBridge     = "pdpodp0"
	peapodSubnet     = "10.74.0.0/24"
	containerdBridge = "pdpodc0"
	containerdSubnet = "10.75.0.0/24"
)

// peapodDaemon is `peapod daemon` with a configuration of its own.
type peapodDaemon struct {
	bin, root, state string
	cmd              *exec.Cmd
	exited           chan struct{}
	logPath          string
}

// startPeapod writes peapod.toml and registries.conf (registry.k8s.io,
// gcr.io and k8s.gcr.io mirrored to the local registry, as the conformance
// kit expects) and starts the daemon with its root under roots and its
// state under /run (short: attach socket paths must fit in 108 bytes).
func startPeapod(ctx context.Context, bin, registry, work, roots string) (*peapodDaemon, error) {
	dir := filepath.Join(work, "peapod")
	root := filepath.Join(roots, "peapod-root")
	for _, d := range []string{dir, root, filepath.Join(dir, "net.d")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	state, err := os.MkdirTemp("/run", "pdpod-")
	if err != nil {
		return nil, err
	}
	var rc strings.Builder
	fmt.Fprintf(&rc, "[[registry]]\nlocation = %q\ninsecure = true\n", registry)
	for _, h := range []string{"registry.k8s.io", "gcr.io", "k8s.gcr.io", "docker.io"} {
		fmt.Fprintf(&rc, "\n[[registry]]\nprefix = %q\nlocation = %q\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n", h, h, registry)
	}
	regConf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(regConf, []byte(rc.String()), 0o644); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "peapod.toml")
	toml := fmt.Sprintf(`[image]
registries_config = %q
certs_dir = %q
auth_files = []

[network]
cni_conf_dir = %q
cni_bin_dirs = ["/usr/lib/cni"]
bridge = %q
subnet = %q

[runtime]
runc = "/usr/sbin/runc"
conmon = "/usr/bin/conmon"
`, regConf, filepath.Join(dir, "certs.d"), filepath.Join(dir, "net.d"), peapodBridge, peapodSubnet)
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		return nil, err
	}
	d := &peapodDaemon{bin: bin, root: root, state: state, exited: make(chan struct{}), logPath: filepath.Join(work, "peapod-daemon.log")}
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not CommandContext: the daemon gets SIGTERM from stop, whatever
	// ends the run, after its pods are removed.
	d.cmd = exec.Command(bin, "daemon", "--root", root, "--state", state, "--config", conf, "--log-level", "warn")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start peapod daemon: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	if err := waitCRI(ctx, d.endpoint(), d.exited); err != nil {
		d.stop()
		return nil, fmt.Errorf("peapod daemon (log %s): %w\n%s", d.logPath, err, tail(d.logPath, 20))
	}
	return d, nil
}

func (d *peapodDaemon) name() string     { return "peapod" }
func (d *peapodDaemon) endpoint() string { return "unix://" + filepath.Join(d.state, "peapod.sock") }
func (d *peapodDaemon) pid() int         { return d.cmd.Process.Pid }
func (d *peapodDaemon) dirs() []string   { return []string{d.root, d.state} }
func (d *peapodDaemon) version() string {
	return firstLine(d.bin, "version", "--host", "unix:///nonexistent")
}

// stop removes every pod the benchmark left (pods outlive the daemon),
// stops the daemon, and removes its bridge and state.
func (d *peapodDaemon) stop() {
	removeAllPods(d.endpoint())
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
	_ = exec.Command("ip", "link", "del", peapodBridge).Run()
	unmountUnder(d.state)
	os.RemoveAll(d.state)
}

// containerdDaemon is the conformance kit's containerd (containerd-up.sh).
type containerdDaemon struct {
	kit, binDir, root, state string
	env                      []string
	daemonPid                int
	ep                       string
}

func startContainerd(ctx context.Context, kit, binDir, registry, work, roots string) (*containerdDaemon, error) {
	if _, err := os.Stat(filepath.Join(binDir, "containerd")); err != nil {
		return nil, fmt.Errorf("%w (build containerd 2.4.2 with `REF=1 %s/tools.sh`)", err, kit)
	}
	// Under /run and short: containerd refuses a shim socket directory
	// longer than 42 bytes.
	state, err := os.MkdirTemp("/run", "pdpodc-")
	if err != nil {
		return nil, err
	}
	d := &containerdDaemon{kit: kit, binDir: binDir, root: filepath.Join(roots, "containerd-root"), state: state}
	d.env = append(os.Environ(),
		"CONTAINERD_BIN_DIR="+binDir,
		"CRICTL="+filepath.Join(binDir, "crictl"),
		"REF_ROOT="+d.root,
		"REF_STATE="+state,
		"REF_ETC="+filepath.Join(work, "containerd-etc"),
		"REGISTRY="+registry,
		"BRIDGE="+containerdBridge,
		"SUBNET="+containerdSubnet,
		"LOG_LEVEL=warn",
	)
	up := exec.CommandContext(ctx, filepath.Join(kit, "containerd-up.sh"))
	up.Env = d.env
	var stderr strings.Builder
	up.Stderr = &stderr
	out, err := up.Output()
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("containerd-up.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	d.ep = lines[len(lines)-1]
	b, err := os.ReadFile(filepath.Join(state, "containerd.pid"))
	if err != nil {
		d.stop()
		return nil, err
	}
	if d.daemonPid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		d.stop()
		return nil, err
	}
	// The socket exists before the CRI plugin answers.
	if err := waitCRI(ctx, d.ep, nil); err != nil {
		d.stop()
		return nil, fmt.Errorf("containerd: %w\n%s", err, tail(filepath.Join(roots, "containerd-root", "containerd.log"), 20))
	}
	return d, nil
}

func (d *containerdDaemon) name() string     { return "containerd" }
func (d *containerdDaemon) endpoint() string { return d.ep }
func (d *containerdDaemon) pid() int         { return d.daemonPid }
func (d *containerdDaemon) dirs() []string   { return []string{d.root, d.state} }
func (d *containerdDaemon) version() string {
	return firstLine(filepath.Join(d.binDir, "containerd"), "--version")
}

func (d *containerdDaemon) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	down := exec.CommandContext(ctx, filepath.Join(d.kit, "containerd-down.sh"))
	down.Env = d.env
	_ = down.Run()
	if d.daemonPid > 0 && syscall.Kill(d.daemonPid, 0) == nil {
		_ = syscall.Kill(d.daemonPid, syscall.SIGKILL)
	}
	_ = exec.Command("ip", "link", "del", containerdBridge).Run()
	unmountUnder(d.state)
	os.RemoveAll(d.state)
}

// removeAllPods stops and removes every sandbox the CRI endpoint lists.
func removeAllPods(ep string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := dialCRI(ep)
	if err != nil {
		return
	}
	defer c.close()
	_ = c.removeAll(ctx)
}

// waitCRI waits until the endpoint answers the CRI Version call.
func waitCRI(ctx context.Context, ep string, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	sock := strings.TrimPrefix(ep, "unix://")
	for {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			c, err := dialCRI(ep)
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err = c.version(cctx)
				cancel()
				c.close()
				if err == nil {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no CRI answer on %s after 30s", ep)
		}
		select {
		case <-exited:
			return errors.New("exited before serving")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// scratchFS makes a fresh ext4 filesystem (mkfs defaults, with a journal)
// in a sparse file under dir and mounts it on dir/fs for the runtimes'
// roots: this VM's root filesystem is ext4 without a journal, where file
// creation right after someone else's mass deletion is slow (see
// bench/README.md). The returned function unmounts it.
func scratchFS(ctx context.Context, dir string, size int64) (string, func(), error) {
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "fs")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return "", nil, err
	}
	f, err := os.Create(img)
	if err != nil {
		return "", nil, err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", nil, err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("mkfs.ext4: %w: %s", err, out)
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("mount %s: %w: %s", img, err, out)
	}
	return mnt, func() {
		unmountUnder(mnt + "/")
		if err := unix.Unmount(mnt, 0); err != nil {
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	}, nil
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	dir = strings.TrimSuffix(dir, "/")
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := f[4]; strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}
