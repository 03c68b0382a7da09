// Package mlpb is the Go code protoc-gen-go generates from ../proto/*.proto: Pulsar's
// managed-ledger metadata (MLDataFormats.proto) and schema locator (SchemaStorageFormat.proto).
// Do not edit the .pb.go files; see ../generate.go.
package mlpb
