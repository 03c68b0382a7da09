package managedledger

// The generated code in mlpb/ is committed, so building needs neither protoc nor the plugin.
// Regenerate after changing proto/*.proto with protoc 3.21 (Debian's protobuf-compiler):
// `go generate ./internal/managedledger` builds the plugin at go.mod's protobuf version into bin/.
//go:generate go build -o ../../bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
//go:generate protoc --plugin=protoc-gen-go=../../bin/protoc-gen-go --proto_path=proto --go_out=mlpb --go_opt=paths=source_relative mldata.proto schema.proto
