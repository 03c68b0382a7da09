// Package archivetest writes archives for the tests of their readers (the restore, inspect,
// diff, the API): version-2 archives of given records, one store's or two, plain or
// encrypted, and version-1 archives, which the readers must keep reading.
package archivetest

import (
	"bytes"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/archive"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// V1 writes a version-1 archive of recs, in the order given, with managed ledgers under
// managedLedgerPath.
func V1(t testing.TB, managedLedgerPath string, recs []znode.Record) []byte {
	t.Helper()
	var stream bytes.Buffer
	sw := archive.NewStreamWriter(&stream)
	for _, r := range recs {
		if err := sw.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	m := archive.Manifest{
		ToolVersion: "test", Source: []string{"zk:2181"}, ManagedLedgerPath: managedLedgerPath,
		StartTime: time.Unix(1700000000, 0).UTC(), EndTime: time.Unix(1700000001, 0).UTC(),
		ZxidStart: "0x1", ZxidEnd: "0x2", MaxZxid: "0x2",
		Counts: result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()}, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256(),
	}
	var out bytes.Buffer
	if _, err := archive.WriteV1(&out, m, bytes.NewReader(stream.Bytes()), int64(stream.Len())); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Roles writes a version-2 archive of a cluster with a configuration store apart (conf not
// nil) or of one store: each role's records in the order given, managed ledgers under
// /managed-ledgers.
func Roles(t testing.TB, local, conf []znode.Record) []byte {
	t.Helper()
	return write(t, local, conf, nil)
}

// Encrypted is Roles with every stream encrypted with age to recipient, as
// backup.encryption.recipients has the backup write it.
func Encrypted(t testing.TB, local, conf []znode.Record, recipient *age.X25519Recipient) []byte {
	t.Helper()
	return write(t, local, conf, recipient)
}

func write(t testing.TB, local, conf []znode.Record, recipient *age.X25519Recipient) []byte {
	t.Helper()
	m := archive.Manifest{ToolVersion: "test", ManagedLedgerPath: "/managed-ledgers",
		StartTime: time.Unix(1700000000, 0).UTC(), EndTime: time.Unix(1700000001, 0).UTC()}
	roles := []struct {
		role string
		recs []znode.Record
	}{{archive.RoleLocal, local}}
	if conf != nil {
		roles = append(roles, struct {
			role string
			recs []znode.Record
		}{archive.RoleConfiguration, conf})
	}
	var streams []archive.Stream
	for _, r := range roles {
		var b bytes.Buffer
		sw := archive.NewStreamWriter(&b)
		for _, rec := range r.recs {
			if err := sw.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := sw.Flush(); err != nil {
			t.Fatal(err)
		}
		counts := result.Counts{Znodes: sw.Count(), DataBytes: sw.DataBytes()}
		m.Roles = append(m.Roles, archive.Role{Role: r.role, Stream: archive.StreamFor(r.role), Store: "zookeeper", Source: "zk:127.0.0.1:2181/" + r.role,
			Consistency: archive.Consistency{ZxidStart: "0x1", ZxidEnd: "0x2", MaxZxid: "0x2"},
			Counts:      counts, StreamBytes: sw.Bytes(), StreamSHA256: sw.SHA256()})
		m.Znodes += counts.Znodes
		m.DataBytes += counts.DataBytes
		if recipient != nil {
			var enc bytes.Buffer
			if err := archive.EncryptStream(&enc, &b, []age.Recipient{recipient}); err != nil {
				t.Fatal(err)
			}
			b = enc
		}
		streams = append(streams, archive.Stream{R: bytes.NewReader(b.Bytes()), Size: int64(b.Len())})
	}
	if recipient != nil {
		m.Encryption = &archive.Encryption{Scheme: "age", Recipients: []string{recipient.String()}}
	}
	var out bytes.Buffer
	if _, err := archive.Write(&out, m, streams); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
