package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/portcullis-mta/portcullis/sdk/internal/bridge"
	"github.com/portcullis-mta/portcullis/sdk/internal/pb"
)

const maxMsgSize = bridge.MaxMsgSize

func init() {
	bridge.Plugin = func(stage any) plugin.Plugin {
		s, _ := stage.(Stage)
		return &grpcPlugin{stage: s}
	}
}

// handshake is the go-plugin handshake: the protocol version and a cookie
// that tells a binary it was started by a Portcullis host.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   bridge.MagicCookieKey,
	MagicCookieValue: bridge.MagicCookieValue,
}

// Serve serves stage over the plugin protocol until the host stops the
// plugin; it is a plugin's whole main. Run by hand, outside a Portcullis
// host, it says so and exits 1.
//
// The default slog logger writes to the host: a stage's slog calls appear
// in the gateway's log under its stage name, and those given Check's
// context (slog.InfoContext(ctx, ...)) carry the call's session and
// queue_id as well (RequestLogHandler). If the stage implements Closer,
// Close is called before the process exits.
func Serve(stage Stage) {
	if os.Getenv(bridge.MagicCookieKey) != bridge.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a Portcullis plugin: the gateway starts it, it is not run by hand.\n"+
			"Name it as the plugin of a stage in a rule file (plugin: %s).\n", os.Args[0], os.Args[0])
		os.Exit(1)
	}
	slog.SetDefault(slog.New(newHostLogHandler(os.Stderr)))
	// A service manager stopping the gateway signals its whole process
	// group (systemd: the cgroup), but the gateway still calls its stages
	// while it drains. The gateway stops its plugins itself; one whose
	// gateway is gone exits on its own.
	signal.Ignore(syscall.SIGTERM)
	go exitWithParent(hostPID())
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{bridge.PluginName: &grpcPlugin{stage: stage}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts,
				grpc.MaxRecvMsgSize(maxMsgSize), grpc.MaxSendMsgSize(maxMsgSize)))
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	})
	if c, ok := stage.(Closer); ok {
		if err := c.Close(); err != nil {
			slog.Error("closing stage", "error", err)
		}
	}
}

// hostPID is the process the plugin should have as parent: the one the
// host named, else the parent at start.
func hostPID() int {
	if n, err := strconv.Atoi(os.Getenv(bridge.HostPIDEnv)); err == nil && n > 0 {
		return n
	}
	return os.Getppid()
}

// exitWithParent ends an orphaned plugin: a gateway killed outright
// (SIGKILL, OOM) cannot stop its plugins, and an orphan would hold its
// state file's lock against the next gateway's plugin. Polling the parent
// ID is portable and, unlike Linux's Pdeathsig, not tied to the thread
// that started the process.
func exitWithParent(ppid int) {
	for range time.Tick(time.Second) {
		if os.Getppid() != ppid {
			os.Exit(1)
		}
	}
}

// grpcPlugin is the go-plugin Plugin of a stage: the server half in the
// plugin process, the client half in the host.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	stage Stage
}

func (p *grpcPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	if p.stage == nil {
		return fmt.Errorf("sdk: no stage to serve")
	}
	pb.RegisterStageServer(s, &stageServer{stage: p.stage, broker: broker})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return newStageClient(broker, c), nil
}
