package managedledger

// The generated code in mlpb/ is committed, so building needs neither protoc nor the plugin.
// Regenerate after changing proto/*.proto with protoc 3.21 and protoc-gen-go v1.36.12
// (GOBIN=/tmp/inst/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12):
//go:generate protoc --plugin=protoc-gen-go=/tmp/inst/bin/protoc-gen-go --proto_path=proto --go_out=mlpb --go_opt=paths=source_relative mldata.proto schema.proto
