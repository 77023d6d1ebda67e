package sdk

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A stage that returns its context's error at the deadline answers with
// its own status, which can reach the caller in place of gRPC's own: it is
// still the caller's deadline, and errors.Is must say so (CI saw
// plugintest's Check return a bare "context deadline exceeded" once, on a
// loaded machine). Before the deadline, a stage's error stays its own.
func TestCallErrorStageAnswersAtDeadline(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	stageSaid := status.Error(codes.Unknown, context.DeadlineExceeded.Error())
	err := callError(expired, stageSaid)
	if !errors.Is(err, context.DeadlineExceeded) || err.Error() != "context deadline exceeded" {
		t.Errorf("after the deadline: %v (errors.Is DeadlineExceeded: %v)", err, errors.Is(err, context.DeadlineExceeded))
	}
	live, cancel2 := context.WithTimeout(context.Background(), time.Hour)
	defer cancel2()
	if err := callError(live, status.Error(codes.Unknown, "lookup failed")); errors.Is(err, context.DeadlineExceeded) || err.Error() != "lookup failed" {
		t.Errorf("before the deadline: %v", err)
	}
}
