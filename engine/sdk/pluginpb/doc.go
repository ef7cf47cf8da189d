// Package pluginpb is the gRPC protocol between the engine and its
// out-of-process stage plugins: plugin.proto and the Go code generated from
// it, committed so that building needs no protoc, and the packed format of
// a batch and its results (Writer, Reader), which the messages carry as
// bytes. Plugin authors do not use it directly; engine/sdk.Serve speaks it.
//
// After editing plugin.proto, regenerate with `go generate` in this
// directory (it needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH).
package pluginpb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto
