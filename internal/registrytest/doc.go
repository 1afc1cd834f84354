// Package registrytest runs real registries for tests and the demo, as
// net/http/httptest runs HTTP servers: each Registry is Debian's
// docker-registry (CNCF distribution 2.8) on a free 127.0.0.1 port with its
// storage in a directory of its own.
//
// A registry can serve plain HTTP or TLS (with a CA generated per registry),
// and can require htpasswd basic auth or bearer tokens from a token server
// this package runs, which speaks the Docker registry token protocol the way
// Docker Hub, GHCR and Harbor do. Integration tests must exercise the same
// code paths a user's registry does, so nothing here is a mock: pushes and
// pulls go through the real server.
//
// Distribution 2.8 accepts htpasswd auth over plain HTTP (it only asks for
// TLS in its documentation), so every combination of TLS, Htpasswd and Token
// works.
//
// Proxy serves plain HTTP on loopback in front of a registry (plain or TLS)
// to count requests, inject failures and corrupt blobs in transit.
package registrytest
