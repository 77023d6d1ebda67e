package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portcullis-mta/portcullis/sdk/internal/bridge"
	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

// stageClient is the host's end of one plugin process. It satisfies
// hostrpc.Client.
type stageClient struct {
	c     pb.StageClient
	src   *messageSource
	srcID uint32
}

func newStageClient(broker *plugin.GRPCBroker, conn *grpc.ClientConn) *stageClient {
	sc := &stageClient{c: pb.NewStageClient(conn), src: &messageSource{msgs: map[uint64]*Message{}}}
	if broker != nil {
		// One source per plugin process, served for its whole life: the
		// broker makes a socket per AcceptAndServe, too dear per message.
		sc.srcID = broker.NextId()
		go broker.AcceptAndServe(sc.srcID, func(opts []grpc.ServerOption) *grpc.Server {
			s := grpc.NewServer(append(opts, grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize))...)
			pb.RegisterMessageSourceServer(s, sc.src)
			return s
		})
	}
	return sc
}

// Info asks the plugin to describe its stage and checks the protocol version.
func (sc *stageClient) Info(ctx context.Context) (Info, error) {
	in, err := sc.c.Info(ctx, &pb.InfoRequest{Source: sc.srcID})
	if err != nil {
		return Info{}, callError(ctx, err)
	}
	if v := in.GetProtocolVersion(); v != ProtocolVersion {
		return Info{}, fmt.Errorf("plugin speaks protocol version %d, this host %d", v, ProtocolVersion)
	}
	return infoFromPB(in), nil
}

// Configure sends the stage its environment and config.
func (sc *stageClient) Configure(ctx context.Context, env Env, cfg map[string]any) error {
	b, err := encodeConfig(cfg)
	if err != nil {
		return err
	}
	_, err = sc.c.Configure(ctx, &pb.ConfigureRequest{Env: envToPB(env), ConfigJson: b, Source: sc.srcID})
	if err != nil {
		return callError(ctx, err)
	}
	return nil
}

// CheckConfig asks the plugin to validate a config without applying it.
// A plugin that cannot (its stage is no sdk.ConfigChecker, or its SDK
// predates the call) gives bridge.ErrNoConfigCheck.
func (sc *stageClient) CheckConfig(ctx context.Context, env Env, cfg map[string]any) error {
	b, err := encodeConfig(cfg)
	if err != nil {
		return err
	}
	_, err = sc.c.CheckConfig(ctx, &pb.CheckConfigRequest{Env: envToPB(env), ConfigJson: b})
	if status.Code(err) == codes.Unimplemented {
		return bridge.ErrNoConfigCheck
	}
	if err != nil {
		return callError(ctx, err)
	}
	return nil
}

// Check runs one phase through the plugin.
func (sc *stageClient) Check(ctx context.Context, req *Request) (*Result, error) {
	in := requestToPB(req)
	if m := req.Message; m != nil {
		path, off, size := m.Location()
		pm := &pb.Message{Header: headerToPB(m.Header), Size: size, Path: path, Offset: off}
		if sc.srcID != 0 {
			pm.Source, pm.Handle = sc.srcID, sc.src.add(m)
			defer sc.src.remove(pm.Handle)
		}
		in.Message = pm
	}
	out, err := sc.c.Check(ctx, in)
	if err != nil {
		return nil, callError(ctx, err)
	}
	return resultFromPB(out)
}

// callError turns a gRPC status into an error callers can test with
// errors.Is: bridge.ErrUnavailable (restart the plugin), the context's
// errors (the stage's timeout), or the stage's own error text.
func callError(ctx context.Context, err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch s.Code() {
	case codes.DeadlineExceeded:
		return withDetail(context.DeadlineExceeded, s.Message())
	case codes.Canceled:
		if ctx.Err() != nil {
			return withDetail(ctx.Err(), s.Message())
		}
		// The plugin's side of the deadline (it resets the stream when
		// the grpc-timeout it was sent runs out) can arrive a moment
		// before our own timer fires.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			return withDetail(context.DeadlineExceeded, s.Message())
		}
		// Otherwise the connection went away under the call ("the client
		// connection is closing"): that is the plugin, not the caller.
		return fmt.Errorf("%w: %s", bridge.ErrUnavailable, s.Message())
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", bridge.ErrUnavailable, s.Message())
	}
	// A stage that returns its context's error when the deadline passes
	// (as it should) answers with its own status (Unknown, "context
	// deadline exceeded"), which can arrive before gRPC's: it is still the
	// caller's deadline, and errors.Is must say so.
	if ctx.Err() != nil {
		return withDetail(ctx.Err(), s.Message())
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return withDetail(context.DeadlineExceeded, s.Message())
	}
	return errors.New(s.Message())
}

// withDetail wraps sentinel with gRPC's message, unless the message only
// repeats it: gRPC's status for a deadline of the caller's own says
// "context deadline exceeded", and the error read "context deadline
// exceeded: context deadline exceeded".
func withDetail(sentinel error, msg string) error {
	if msg == "" || msg == sentinel.Error() {
		return sentinel
	}
	return fmt.Errorf("%w: %s", sentinel, msg)
}

// messageSource serves the bytes of the messages of calls in progress.
type messageSource struct {
	pb.UnimplementedMessageSourceServer
	next atomic.Uint64
	mu   sync.Mutex
	msgs map[uint64]*Message
}

func (s *messageSource) add(m *Message) uint64 {
	h := s.next.Add(1)
	s.mu.Lock()
	s.msgs[h] = m
	s.mu.Unlock()
	return h
}

func (s *messageSource) remove(h uint64) {
	s.mu.Lock()
	delete(s.msgs, h)
	s.mu.Unlock()
}

// chunkSize stays well under gRPC's default 4 MiB message limit.
const chunkSize = 256 << 10

func (s *messageSource) Read(in *pb.ReadRequest, st grpc.ServerStreamingServer[pb.Chunk]) error {
	s.mu.Lock()
	m := s.msgs[in.GetHandle()]
	s.mu.Unlock()
	if m == nil {
		return errors.New("no such message (the call has ended)")
	}
	r, err := m.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	if off := in.GetOffset(); off > 0 {
		if _, err := io.CopyN(io.Discard, r, off); err != nil {
			return err
		}
	}
	buf := make([]byte, chunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := st.Send(&pb.Chunk{Data: buf[:n]}); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
