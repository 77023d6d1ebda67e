package sdk_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/portcullis-mta/portcullis/sdk"
)

// noReply is the plugin of the package documentation. Its main would be
//
//	func main() { sdk.Serve(noReply{}) }
type noReply struct{}

func (noReply) Info() sdk.Info {
	return sdk.Info{Name: "noreply", Version: "1.0", Phases: []sdk.Phase{sdk.PhaseMail}}
}

func (noReply) Configure(context.Context, sdk.Env, map[string]any) error { return nil }

func (noReply) Check(_ context.Context, req *sdk.Request) (*sdk.Result, error) {
	if strings.HasPrefix(req.Envelope.From, "noreply@") {
		return &sdk.Result{Verdict: sdk.VerdictNeutral, Tags: []string{"noreply"}}, nil
	}
	return &sdk.Result{Verdict: sdk.VerdictNone}, nil
}

// A complete stage; sdk.Serve(noReply{}) is its plugin's whole main. Here it
// is called directly, as sdk/plugintest does over the protocol.
func Example() {
	var s sdk.Stage = noReply{}
	for _, from := range []string{"noreply@shop.example", "alice@example.test"} {
		res, _ := s.Check(context.Background(), &sdk.Request{Phase: sdk.PhaseMail, Envelope: sdk.Envelope{From: from}})
		fmt.Println(from, res.Verdict, res.Tags)
	}
	// Output:
	// noreply@shop.example neutral [noreply]
	// alice@example.test none []
}
