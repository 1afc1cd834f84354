// Command registry starts a private registry for the demo: Debian's
// docker-registry on loopback with TLS (a CA it generates) and htpasswd
// authentication, seeded with a busybox-based web image built locally (httpd
// serving a baked-in /www/index.html on port 8080). It
// writes what the demo needs to know to an env file and serves until it is
// sent SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// Page is the web image's /www/index.html, which its httpd serves.
const Page = "<h1>Hello from awesomeapps/web</h1> served by busybox httpd over the pod's shared localhost\n"

func main() {
	dir := flag.String("dir", "", "directory for the registry's data (required)")
	user := flag.String("user", "demo", "user the registry accepts")
	passFile := flag.String("password-file", "", "file holding that user's password (required)")
	repo := flag.String("push", "awesomeapps/web:v1", "repository:tag to push the demo image as")
	envFile := flag.String("env-file", "", "where to write REGISTRY= and CA_FILE= (required)")
	flag.Parse()
	if *dir == "" || *passFile == "" || *envFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dir, *user, *passFile, *repo, *envFile); err != nil {
		fmt.Fprintln(os.Stderr, "demo registry:", err)
		os.Exit(1)
	}
}

func run(dir, user, passFile, repo, envFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pass, err := os.ReadFile(passFile)
	if err != nil {
		return err
	}
	reg, err := registrytest.Launch(ctx, dir, registrytest.Options{
		TLS:      true,
		Htpasswd: map[string]string{user: strings.TrimSpace(string(pass))},
	})
	if err != nil {
		return err
	}
	defer reg.Close()
	www, err := imagetest.Layer([]imagetest.File{imagetest.Dir("www"), imagetest.Reg("www/index.html", Page)}, imagetest.Gzip)
	if err != nil {
		return err
	}
	img, err := imagetest.BusyboxImage(ctx, imagetest.ImageOptions{Layers: []v1.Layer{www}, Config: v1.Config{
		Cmd:          []string{"httpd", "-f", "-v", "-p", "8080", "-h", "/www"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Labels:       map[string]string{"org.opencontainers.image.title": "peapod demo web"},
	}})
	if err != nil {
		return err
	}
	if err := reg.Push(ctx, repo, img); err != nil {
		return err
	}
	env := fmt.Sprintf("REGISTRY=%s\nCA_FILE=%s\nIMAGE=%s\n", reg.Host, reg.CAFile, reg.Ref(repo))
	if err := os.WriteFile(envFile, []byte(env), 0o644); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
