package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/peapod/peapod/internal/client"
)

func newLogsCmd(g *globals) *cobra.Command {
	var ns nsFlags
	opts := client.LogOptions{}
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER]",
		Short: "Print the logs of a container in a pod",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return c.Logs(cmd.Context(), ns.ns(), podName(args[0]), opts, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&opts.Container, "container", "c", "", "container name (default: the pod's only container)")
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming the log while the container runs")
	f.BoolVarP(&opts.Previous, "previous", "p", false, "the log of the previous, terminated run of the container")
	f.BoolVar(&opts.Timestamps, "timestamps", false, "prefix each line with its RFC3339 timestamp")
	f.Int64Var(&opts.TailLines, "tail", -1, "the last N lines only (-1: all)")
	return cmd
}

// podName accepts POD and pod/POD, as kubectl does.
func podName(arg string) string {
	for _, p := range []string{"pod/", "pods/", "po/"} {
		if n, ok := strings.CutPrefix(arg, p); ok {
			return n
		}
	}
	return arg
}

// terminal puts the local terminal in raw mode for a -t session and sends
// its size now and on every SIGWINCH. restore undoes both.
func terminal(ctx context.Context) (resize <-chan client.TerminalSize, restore func(), err error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, func() {}, nil
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, nil, fmt.Errorf("set the terminal to raw mode: %w", err)
	}
	// runc clears ONLCR on an exec's terminal (it expects the outer
	// terminal to turn "\n" into "\r\n"), so keep output processing on.
	if t, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
		t.Oflag |= unix.OPOST | unix.ONLCR
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
	ch := make(chan client.TerminalSize, 4)
	send := func() {
		if w, h, err := term.GetSize(fd); err == nil {
			select {
			case ch <- client.TerminalSize{Width: uint16(w), Height: uint16(h)}:
			default:
			}
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-winch:
				send()
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, func() {
		cancel()
		signal.Stop(winch)
		_ = term.Restore(fd, old)
	}, nil
}

type streamFlags struct {
	ns        nsFlags
	container string
	stdin     bool
	tty       bool
}

func (s *streamFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&s.ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	f.StringVarP(&s.container, "container", "c", "", "container name (default: the pod's only container)")
	f.BoolVarP(&s.stdin, "stdin", "i", false, "pass standard input to the container")
	f.BoolVarP(&s.tty, "tty", "t", false, "stdin is a terminal (raw mode, window size forwarded)")
}

// session runs an exec or attach session with the local streams and exits
// with the command's exit code, as kubectl does.
func (s *streamFlags) session(cmd *cobra.Command, run func(client.StreamOptions) error) error {
	opts := client.StreamOptions{
		Container: s.container,
		Stdout:    cmd.OutOrStdout(),
		Stderr:    cmd.ErrOrStderr(),
		TTY:       s.tty,
	}
	if s.stdin {
		opts.Stdin = cmd.InOrStdin()
	}
	if s.tty && !s.stdin {
		fmt.Fprintln(cmd.ErrOrStderr(), "Unable to use a TTY - input is not connected to a terminal or -i was not given")
		opts.TTY = false
	}
	restore := func() {}
	if opts.TTY {
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			fmt.Fprintln(cmd.ErrOrStderr(), "Unable to use a TTY - input is not a terminal or the right kind of file")
		}
		resize, r, err := terminal(cmd.Context())
		if err != nil {
			return err
		}
		opts.Resize, restore = resize, r
	}
	err := run(opts)
	restore()
	var ee *client.ExitError
	if errors.As(err, &ee) {
		fmt.Fprintln(cmd.ErrOrStderr(), ee.Error())
		os.Exit(ee.Code)
	}
	return err
}

func newExecCmd(g *globals) *cobra.Command {
	var s streamFlags
	cmd := &cobra.Command{
		Use:   "exec [-i] [-t] POD [-c CONTAINER] -- COMMAND [ARGS...]",
		Short: "Run a command in a container of a pod",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			if dash < 0 || dash != 1 || len(args) < 2 {
				return errors.New("you must specify the pod and, after --, at least one command for the container: peapod exec POD -- COMMAND [ARGS...]")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			return s.session(cmd, func(o client.StreamOptions) error {
				return c.Exec(cmd.Context(), s.ns.ns(), podName(args[0]), args[1:], o)
			})
		},
	}
	s.add(cmd)
	return cmd
}

func newAttachCmd(g *globals) *cobra.Command {
	var s streamFlags
	cmd := &cobra.Command{
		Use:   "attach POD [-c CONTAINER] [-i] [-t]",
		Short: "Attach to the main process of a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return s.session(cmd, func(o client.StreamOptions) error {
				return c.Attach(cmd.Context(), s.ns.ns(), podName(args[0]), o)
			})
		},
	}
	s.add(cmd)
	return cmd
}

// portMapping is one [LOCAL:]REMOTE argument; LOCAL 0 or empty with a
// colon picks a free port.
type portMapping struct{ local, remote uint16 }

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid port %q", s)
	}
	return uint16(n), nil
}

func parsePortMapping(arg string) (portMapping, error) {
	l, r, found := strings.Cut(arg, ":")
	if !found {
		p, err := parsePort(arg)
		if err != nil || p == 0 {
			return portMapping{}, fmt.Errorf("invalid port %q", arg)
		}
		return portMapping{p, p}, nil
	}
	var m portMapping
	var err error
	if l != "" {
		if m.local, err = parsePort(l); err != nil {
			return m, err
		}
	}
	if m.remote, err = parsePort(r); err != nil || m.remote == 0 {
		return m, fmt.Errorf("invalid remote port %q", r)
	}
	return m, nil
}

func newPortForwardCmd(g *globals) *cobra.Command {
	var ns nsFlags
	var address string
	cmd := &cobra.Command{
		Use:   "port-forward POD [LOCAL:]REMOTE...",
		Short: "Forward local ports to ports of a pod (reached inside its network namespace)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			pod := podName(args[0])
			var maps []portMapping
			for _, a := range args[1:] {
				m, err := parsePortMapping(a)
				if err != nil {
					return err
				}
				maps = append(maps, m)
			}
			ctx := cmd.Context()
			var listeners []net.Listener
			defer func() {
				for _, l := range listeners {
					l.Close()
				}
			}()
			for _, m := range maps {
				l, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(int(m.local))))
				if err != nil {
					return fmt.Errorf("unable to listen on port %d: %w", m.local, err)
				}
				listeners = append(listeners, l)
				fmt.Fprintf(cmd.OutOrStdout(), "Forwarding from %s -> %d\n", l.Addr(), m.remote)
			}
			var wg sync.WaitGroup
			for i, l := range listeners {
				remote := maps[i].remote
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						conn, err := l.Accept()
						if err != nil {
							return
						}
						fmt.Fprintf(cmd.OutOrStdout(), "Handling connection for %d\n", maps[i].local)
						go forward(ctx, c, cmd.ErrOrStderr(), ns.ns(), pod, remote, conn)
					}
				}()
			}
			<-ctx.Done()
			for _, l := range listeners {
				l.Close()
			}
			wg.Wait()
			return nil
		},
	}
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVar(&address, "address", "127.0.0.1", "local address to listen on")
	return cmd
}

// forward copies one accepted connection to the pod's port and back.
func forward(ctx context.Context, c *client.Client, errw io.Writer, ns, pod string, port uint16, conn net.Conn) {
	defer conn.Close()
	remote, err := c.PortForward(ctx, ns, pod, port)
	if err != nil {
		fmt.Fprintf(errw, "E0000 error forwarding port %d to pod %s: %v\n", port, pod, err)
		return
	}
	defer remote.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(remote, conn)
		if cw, ok := remote.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(conn, remote)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}
