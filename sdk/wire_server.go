package sdk

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

// stageServer serves a Stage in the plugin process.
type stageServer struct {
	pb.UnimplementedStageServer
	stage  Stage
	broker *plugin.GRPCBroker

	mu     sync.Mutex
	source pb.MessageSourceClient // the host's, dialled at Configure
	srcID  uint32
}

// recoverCall turns a panic in the stage's method into that call's error
// (the stack goes to the log): one bad call must not take down the process
// every session shares. Use it deferred, with the method's error result,
// after faultsPanic: a fault reading a memory-mapped file (a state file
// truncated under bbolt) is then such a panic, not the end of the process.
func recoverCall(ctx context.Context, method string, err *error) {
	if p := recover(); p != nil {
		slog.ErrorContext(ctx, "stage panicked", "method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "stage panicked in %s: %v", method, p)
	}
}

// faultsPanic makes a memory fault in this goroutine a panic (see
// recoverCall) and returns what restores the setting; use it as
// defer faultsPanic()().
func faultsPanic() func() {
	old := debug.SetPanicOnFault(true)
	return func() { debug.SetPanicOnFault(old) }
}

func (s *stageServer) Info(ctx context.Context, in *pb.InfoRequest) (out *pb.InfoResponse, err error) {
	defer faultsPanic()()
	defer recoverCall(ctx, "Info", &err)
	s.dialSource(in.GetSource())
	return infoToPB(s.stage.Info()), nil
}

func (s *stageServer) Configure(ctx context.Context, in *pb.ConfigureRequest) (out *pb.ConfigureResponse, err error) {
	defer faultsPanic()()
	defer recoverCall(ctx, "Configure", &err)
	cfg, err := decodeConfig(in.GetConfigJson())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.dialSource(in.GetSource())
	if err := s.stage.Configure(ctx, envFromPB(in.GetEnv()), cfg); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.ConfigureResponse{}, nil
}

// CheckConfig asks the stage to validate a config without applying it. A
// stage that is not an sdk.ConfigChecker answers UNIMPLEMENTED, as a
// plugin built before the call existed does (the generated default).
func (s *stageServer) CheckConfig(ctx context.Context, in *pb.CheckConfigRequest) (out *pb.CheckConfigResponse, err error) {
	defer faultsPanic()()
	defer recoverCall(ctx, "CheckConfig", &err)
	checker, ok := s.stage.(ConfigChecker)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "the stage does not check configs")
	}
	cfg, err := decodeConfig(in.GetConfigJson())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := checker.CheckConfig(ctx, envFromPB(in.GetEnv()), cfg); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.CheckConfigResponse{}, nil
}

// dialSource connects to the host's message source. It is done at
// Info and Configure, not on first use, because go-plugin's broker forgets
// the host's address five seconds after the host announced it.
func (s *stageServer) dialSource(id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 || id == s.srcID || s.broker == nil {
		return
	}
	conn, err := s.broker.DialWithOptions(id, grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)))
	if err != nil {
		// Messages in files still work; in-memory ones will fail at Open.
		slog.Warn("cannot reach the host's message source", "error", err)
		return
	}
	s.source, s.srcID = pb.NewMessageSourceClient(conn), id
}

func (s *stageServer) Check(ctx context.Context, in *pb.CheckRequest) (out *pb.CheckResponse, err error) {
	req := requestFromPB(in)
	ctx = withCall(ctx, req)
	defer faultsPanic()()
	defer recoverCall(ctx, "Check", &err)
	if m := in.GetMessage(); m != nil {
		req.Message = s.message(ctx, m)
		// Whatever the stage does, the call's share of the message
		// budget is given back when it returns (a panic included).
		defer req.Message.release()
	}
	res, err := s.stage.Check(ctx, req)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	out, err = resultToPB(res)
	if err != nil {
		slog.ErrorContext(ctx, "stage result refused", "error", err)
		return nil, status.Error(codes.Internal, err.Error())
	}
	return out, nil
}

// message builds the plugin's view of a data-phase message: the spool file
// when it can be opened, else the bytes read from the host.
func (s *stageServer) message(ctx context.Context, m *pb.Message) *Message {
	msg := &Message{Header: headerFromPB(m.GetHeader()), Size: m.GetSize(),
		path: m.GetPath(), offset: m.GetOffset(), hold: newHold()}
	s.dialSource(m.GetSource())
	s.mu.Lock()
	src, ok := s.source, m.GetSource() != 0 && m.GetSource() == s.srcID
	s.mu.Unlock()
	if ok {
		handle := m.GetHandle()
		msg.fetch = func() (io.ReadCloser, error) { return openRemote(ctx, src, handle) }
	}
	return msg
}

// remoteReader reads a message from the host's source as a stream of chunks.
type remoteReader struct {
	stream grpc.ServerStreamingClient[pb.Chunk]
	cancel context.CancelFunc
	buf    []byte
}

func openRemote(ctx context.Context, src pb.MessageSourceClient, handle uint64) (io.ReadCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	st, err := src.Read(ctx, &pb.ReadRequest{Handle: handle})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sdk: reading the message from the host: %w", err)
	}
	return &remoteReader{stream: st, cancel: cancel}, nil
}

func (r *remoteReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		c, err := r.stream.Recv()
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("sdk: reading the message from the host: %w", err)
		}
		r.buf = c.GetData()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *remoteReader) Close() error {
	r.cancel()
	return nil
}
