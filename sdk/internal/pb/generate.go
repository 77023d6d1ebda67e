// Package pb is the generated protobuf and gRPC code of the plugin protocol
// (plugin.proto, proto package portcullis.plugin.v1). It is internal: stage
// authors see only the Go types of package sdk.
package pb

// Regenerate with protoc (Debian protobuf-compiler), protoc-gen-go v1.36.12
// and protoc-gen-go-grpc on PATH.
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
