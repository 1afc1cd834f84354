package cri

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/runtime"
)

// codedErrors maps the errors of the layers below to gRPC codes. The first
// match wins, so the more specific come first.
var codedErrors = []struct {
	err  error
	code codes.Code
}{
	{image.ErrInvalidImageName, codes.InvalidArgument},
	{image.ErrUnauthorized, codes.Unauthenticated},
	{image.ErrRegistryUnavailable, codes.Unavailable},
	{image.ErrBlocked, codes.PermissionDenied},
	{image.ErrNoMatchingPlatform, codes.NotFound},
	{image.ErrDigestMismatch, codes.DataLoss},
	{image.ErrDiskFull, codes.ResourceExhausted},
	{image.ErrNotFound, codes.NotFound},
	{runtime.ErrNotFound, codes.NotFound},
	{runtime.ErrAlreadyExists, codes.AlreadyExists},
	{runtime.ErrNotReady, codes.FailedPrecondition},
	{runtime.ErrInvalidArgument, codes.InvalidArgument},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// extraCodedErrors lets the runtime adapter (daemon wiring) add the
// runtime's sentinel errors; see RegisterErrorCode.
var extraCodedErrors []struct {
	err  error
	code codes.Code
}

// RegisterErrorCode maps errors matching err (errors.Is) to code. It is
// meant for package initialisation of the code that wires a runtime in, so
// that this package need not import the runtime.
func RegisterErrorCode(err error, code codes.Code) {
	extraCodedErrors = append(extraCodedErrors, struct {
		err  error
		code codes.Code
	}{err, code})
}

// coder is implemented by errors that know their own gRPC code.
type coder interface{ GRPCStatus() *status.Status }

// codeOf is the gRPC code for err.
func codeOf(err error) codes.Code {
	var c coder
	if errors.As(err, &c) {
		return c.GRPCStatus().Code()
	}
	for _, ce := range extraCodedErrors {
		if errors.Is(err, ce.err) {
			return ce.code
		}
	}
	for _, ce := range codedErrors {
		if errors.Is(err, ce.err) {
			return ce.code
		}
	}
	return codes.Unknown
}

// toStatus turns an error from below into a gRPC status error that keeps
// the full message (which already says what was being done and to what).
// Errors that already carry a status keep it.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	code := codeOf(err)
	msg := err.Error()
	// The kubelet recognises an unreachable registry by this prefix
	// (cri-api pkg/errors ErrRegistryUnavailable) and reports it as such.
	if code == codes.Unavailable && !strings.HasPrefix(msg, "RegistryUnavailable") {
		msg = "RegistryUnavailable: " + msg
	}
	return status.Error(code, msg)
}

// isNotFound says whether err means the object does not exist.
func isNotFound(err error) bool { return codeOf(err) == codes.NotFound }

// invalid is an InvalidArgument status for a bad request field.
func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
