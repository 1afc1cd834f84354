// Package imagetest builds small OCI and Docker images offline for tests,
// benchmarks and the demo: layers from tar entries written exactly as given
// (hostile ones included), images and multi-arch indexes with a chosen
// manifest format, a runnable busybox root filesystem from this machine's
// dynamic busybox, a pause image from Debian's static catatonit, and
// incompressible layers for benchmarks.
//
// Everything is deterministic: the same inputs give the same digests, so a
// test can build an image twice and compare, or pin a digest.
package imagetest
