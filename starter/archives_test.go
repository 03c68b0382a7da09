package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-zookeeper/zk"
	"google.golang.org/protobuf/proto"

	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/backupdiff"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/inspect"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/managedledger/mlpb"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/pulsartree"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/restore/restoretest"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/result"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/testenv"
	"github.com/pulsar-metadata-backup/pulsar-metadata-backup/internal/znode"
)

// backupCLI runs `starter backup` and returns its result.
func backupCLI(t *testing.T, cfgPath string) result.Backup {
	t.Helper()
	var out bytes.Buffer
	if err := run([]string{"--config", cfgPath, "backup"}, &out); err != nil {
		t.Fatal(err)
	}
	var res result.Backup
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// cli runs the starter and returns its stdout.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(args, &out); err != nil {
		t.Fatalf("starter %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// deleteTree deletes path and its subtree and returns how many znodes it deleted.
func deleteTree(t *testing.T, c *zk.Conn, path string) int64 {
	t.Helper()
	children, _, err := c.Children(path)
	if err != nil {
		t.Fatalf("children %s: %v", path, err)
	}
	var n int64
	for _, ch := range children {
		n += deleteTree(t, c, znode.Join(path, ch))
	}
	if err := c.Delete(path, -1); err != nil {
		t.Fatalf("delete %s: %v", path, err)
	}
	return n + 1
}

// The two archives are real backups (the backup workflow through `starter backup`) of a
// ~100k-znode Pulsar tree, before and after changes made on the ZooKeeper; the diff must
// report exactly those changes, and inspect what the generator wrote.
func TestInspectAndDiffOfTwoRealBackups(t *testing.T) {
	began := time.Now()
	s := startStack(t)
	o := pulsartree.Sized(100_000)
	o.Awkward = true
	o.Compression = mlpb.CompressionType_LZ4
	_, sum := restoretest.Populate(t, s.zk.Addr, o)
	cfgPath := s.config(t, nil)
	populated := time.Now()

	before := backupCLI(t, cfgPath)
	if before.Znodes < 90_000 {
		t.Fatalf("the tree has %d znodes, want about 100k", before.Znodes)
	}

	// inspect of the first backup, against what the generator says it wrote.
	var sumJSON inspect.Summary
	if err := json.Unmarshal([]byte(cli(t, "--config", cfgPath, "inspect", before.URL, "--json")), &sumJSON); err != nil {
		t.Fatal(err)
	}
	checkInspect(t, sumJSON, before, sum)

	// Known changes, as an operator or the brokers would make them.
	c := testenv.SuperConn(t, s.zk.Addr)
	defer c.Close()
	open := zk.WorldACL(zk.PermAll)
	create := func(path string, data []byte) {
		t.Helper()
		if _, err := c.Create(path, data, 0, open); err != nil {
			t.Fatalf("create %s: %v", path, err)
		}
	}
	// A tenant and a namespace appear; tenant-1 and its namespaces go.
	create("/admin/policies/tenant-new", []byte(`{"adminRoles":["ops"],"allowedClusters":["pulsar-cluster"]}`))
	create("/admin/policies/tenant-new/ns-new", []byte(`{"bundles":{"numBundles":4}}`))
	removedTenant := deleteTree(t, c, "/admin/policies/tenant-1")
	// A namespace's policies change: one value replaced, one key added.
	const nsPath = "/admin/policies/public/default"
	oldNS, _, err := c.Get(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(oldNS))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	oldTTL := doc["message_ttl_in_seconds"].(json.Number)
	doc["message_ttl_in_seconds"] = json.Number(oldTTL.String() + "0")
	doc["x-changed-by"] = "test"
	newNS, _ := json.Marshal(doc)
	if _, err := c.Set(nsPath, newNS, -1); err != nil {
		t.Fatal(err)
	}
	// A partitioned topic gets more partitions.
	const ptPath = "/admin/partitioned-topics/public/default/persistent/events"
	oldPT, _, err := c.Get(ptPath)
	if err != nil {
		t.Fatal(err)
	}
	var pt struct {
		Partitions int `json:"partitions"`
	}
	if err := json.Unmarshal(oldPT, &pt); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ptPath, []byte(strings.Replace(string(oldPT), fmt.Sprintf(`"partitions":%d`, pt.Partitions), fmt.Sprintf(`"partitions":%d`, pt.Partitions+2), 1)), -1); err != nil {
		t.Fatal(err)
	}
	// A topic of tenant-3 is deleted with its cursors, one appears in public/default.
	var gone, changed pulsartree.Topic
	for _, tp := range sum.Topics {
		if gone.Path == "" && strings.HasPrefix(tp.Name, "persistent://tenant-3/") {
			gone = tp
		}
		if changed.Path == "" && strings.HasPrefix(tp.Name, "persistent://tenant-2/") && len(tp.Kept) > 0 && len(tp.Dropped) > 0 {
			changed = tp
		}
	}
	if gone.Path == "" || changed.Path == "" {
		t.Fatal("the generated tree has no topic to delete or change")
	}
	removedTopic := deleteTree(t, c, gone.Path)
	newTopic, err := managedledger.Encode(&mlpb.ManagedLedgerInfo{LedgerInfo: []*mlpb.ManagedLedgerInfo_LedgerInfo{
		{LedgerId: proto.Int64(9_000_001), Entries: proto.Int64(5), OffloadContext: &mlpb.OffloadContext{Complete: proto.Bool(true)}},
	}}, mlpb.CompressionType_NONE)
	if err != nil {
		t.Fatal(err)
	}
	create("/managed-ledgers/public/default/persistent/added-topic", newTopic)
	// A topic of tenant-2 offloads one more ledger and its oldest offloaded one is trimmed.
	payload, _, err := c.Get(changed.Path)
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := managedledger.Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	gained, lost := changed.Dropped[0], changed.Kept[0].ID
	var ledgers []*mlpb.ManagedLedgerInfo_LedgerInfo
	for _, li := range info.LedgerInfo {
		switch li.GetLedgerId() {
		case lost:
			continue
		case gained:
			li.OffloadContext = &mlpb.OffloadContext{Complete: proto.Bool(true)}
		}
		ledgers = append(ledgers, li)
	}
	info.LedgerInfo = ledgers
	changedPayload, err := managedledger.Encode(info, mlpb.CompressionType_NONE)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(changed.Path, changedPayload, -1); err != nil {
		t.Fatal(err)
	}
	// A znode's ACL changes, its data does not.
	if _, err := c.SetACL("/counters/producer-name", zk.WorldACL(zk.PermRead|zk.PermWrite), -1); err != nil {
		t.Fatal(err)
	}

	after := backupCLI(t, cfgPath)
	backedUp := time.Now()

	// diff, as JSON, against exactly those changes.
	var res backupdiff.Result
	out := cli(t, "--config", cfgPath, "diff", "--json", before.URL, after.URL)
	diffed := time.Now()
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	names := func(s ...string) backupdiff.Names {
		return backupdiff.Names{Count: int64(len(s)), First: append([]string{}, s...)}
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	check("sides", []string{res.From.URL, res.To.URL}, []string{before.URL, after.URL})
	check("manifests", []int64{res.From.Manifest.Znodes, res.To.Manifest.Znodes}, []int64{before.Znodes, after.Znodes})
	check("tenants", res.Tenants, backupdiff.AddedRemoved{Added: names("tenant-new"), Removed: names("tenant-1")})
	check("namespaces", res.Namespaces, backupdiff.AddedRemoved{Added: names("tenant-new/ns-new"), Removed: names("tenant-1/ns-0", "tenant-1/ns-1")})
	check("topics", res.Topics, backupdiff.AddedRemoved{Added: names("persistent://public/default/added-topic"), Removed: names(gone.Name)})
	check("partitioned topics", res.PartitionedTopics, backupdiff.AddedRemoved{Added: names(), Removed: names()})
	const added, dataChanged = 3, 3 // tenant, namespace, topic; policies, partitions, ledgers
	removed := removedTenant + removedTopic
	check("znodes", res.Znodes, backupdiff.Changes{Added: added, Removed: removed, Changed: dataChanged + 1, DataChanged: dataChanged, ACLChanged: 1,
		Unchanged: before.Znodes - removed - dataChanged - 1})
	if after.Znodes != before.Znodes+added-removed {
		t.Errorf("second backup has %d znodes, first %d: the tree changed beyond the test's changes", after.Znodes, before.Znodes)
	}
	subtrees := map[string]backupdiff.Changes{}
	for _, st := range res.BySubtree {
		subtrees[st.Path] = st.Changes
	}
	check("subtrees", subtrees, map[string]backupdiff.Changes{
		"/admin":                    {Added: 2, Removed: removedTenant, Changed: 2, DataChanged: 2},
		"/admin/policies":           {Added: 2, Removed: removedTenant, Changed: 1, DataChanged: 1},
		"/admin/partitioned-topics": {Changed: 1, DataChanged: 1},
		"/managed-ledgers":          {Added: 1, Removed: removedTopic, Changed: 1, DataChanged: 1},
		"/managed-ledgers/public":   {Added: 1},
		"/managed-ledgers/tenant-2": {Changed: 1, DataChanged: 1},
		"/managed-ledgers/tenant-3": {Removed: removedTopic},
		"/counters":                 {Changed: 1, ACLChanged: 1},
		"/counters/producer-name":   {Changed: 1, ACLChanged: 1},
	})
	check("managed ledgers", res.ManagedLedgers, backupdiff.LedgerChanges{Count: 1, Gained: 1, Lost: 1, Undecodable: names(),
		Changes: []backupdiff.LedgerChange{{Topic: changed.Name, Path: changed.Path, Gained: []int64{gained}, Lost: []int64{lost}, GainedCount: 1, LostCount: 1}}})
	policies, _ := json.Marshal(res.Policies)
	wantPolicies := fmt.Sprintf(`{"count":2,"changes":[`+
		`{"path":%q,"kind":"partitioned-topic","name":"persistent://public/default/events","patch":[{"value":%d,"op":"test","path":"/partitions"},{"value":%d,"op":"replace","path":"/partitions"}]},`+
		`{"path":%q,"kind":"namespace","name":"public/default","patch":[{"value":%s,"op":"test","path":"/message_ttl_in_seconds"},{"value":%s0,"op":"replace","path":"/message_ttl_in_seconds"},{"value":"test","op":"add","path":"/x-changed-by"}]}]}`,
		ptPath, pt.Partitions, pt.Partitions+2, nsPath, oldTTL, oldTTL)
	check("policies", string(policies), wantPolicies)
	check("truncated", res.Truncated, false)

	// The text says the same, for people.
	text := cli(t, "--config", cfgPath, "diff", before.URL, after.URL)
	for _, want := range []string{"+ tenant-new", "- tenant-1", "- " + gone.Name, "+ persistent://public/default/added-topic",
		fmt.Sprintf("~ /message_ttl_in_seconds: %s -> %s0", oldTTL, oldTTL), `+ /x-changed-by: "test"`,
		fmt.Sprintf("%s  +1 [%d]  -1 [%d]", changed.Name, gained, lost)} {
		if !strings.Contains(text, want) {
			t.Errorf("diff text lacks %q:\n%s", want, text)
		}
	}
	textInspect := cli(t, "--config", cfgPath, "inspect", after.URL)
	for _, want := range []string{"archive   " + after.URL, "tenant-new", "A restore of this archive", fmt.Sprintf("znodes    %d", after.Znodes)} {
		if !strings.Contains(textInspect, want) {
			t.Errorf("inspect text lacks %q:\n%s", want, textInspect)
		}
	}

	// Other forms of the URL: file:// (no --config needed) and a bare key in the configured
	// bucket.
	dir := t.TempDir()
	archiveBytes := s.getObject(t, before.Name)
	if err := os.WriteFile(filepath.Join(dir, before.Name), archiveBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	var local inspect.Summary
	if err := json.Unmarshal([]byte(cli(t, "inspect", "--json", "file://"+filepath.Join(dir, before.Name))), &local); err != nil {
		t.Fatal(err)
	}
	local.URL = before.URL
	check("inspect of the same archive as a file", local, sumJSON)
	var byKey inspect.Summary
	if err := json.Unmarshal([]byte(cli(t, "--config", cfgPath, "inspect", "--json", before.Name)), &byKey); err != nil {
		t.Fatal(err)
	}
	check("inspect by bare key", byKey, sumJSON)

	// A corrupt or missing archive: one line naming it.
	if _, err := s.minio.S3Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("backups"),
		Key: aws.String("garbage.tar.gz"), Body: strings.NewReader("not an archive")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "truncated.tar.gz"), archiveBytes[:len(archiveBytes)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfgPath, "inspect", "s3a://backups/garbage.tar.gz"}, "inspect s3a://backups/garbage.tar.gz: corrupt archive: not gzip"},
		{[]string{"--config", cfgPath, "diff", before.URL, "s3a://backups/garbage.tar.gz"}, "diff: s3a://backups/garbage.tar.gz: corrupt archive: not gzip"},
		{[]string{"inspect", "file://" + filepath.Join(dir, "truncated.tar.gz")}, "inspect file://" + filepath.Join(dir, "truncated.tar.gz") + ": corrupt archive"},
		{[]string{"--config", cfgPath, "inspect", "s3a://backups/none.tar.gz"}, "object does not exist"},
		{[]string{"inspect", "backup.tar.gz"}, "a bare key needs --config"},
		{[]string{"diff", before.URL}, "diff: want two archive URLs"},
	} {
		var out bytes.Buffer
		err := run(c.args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) || out.Len() != 0 || strings.Contains(strings.SplitN(err.Error(), "\nusage", 2)[0], "\n") {
			t.Errorf("starter %s: %v (stdout %q), want one line with %q", strings.Join(c.args, " "), err, out.String(), c.want)
		}
	}
	t.Logf("populate %s, inspect and two backups of %d and %d znodes %s, diff %s, test %s",
		populated.Sub(began).Round(time.Millisecond), before.Znodes, after.Znodes, backedUp.Sub(populated).Round(time.Millisecond),
		diffed.Sub(backedUp).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// checkInspect compares an inspect of a backup of the generated tree with the generator's
// own account of it.
func checkInspect(t *testing.T, s inspect.Summary, b result.Backup, sum pulsartree.Summary) {
	t.Helper()
	if s.URL != b.URL || s.Manifest.Znodes != b.Znodes || s.Manifest.Local().Consistency.ZxidEnd != b.ZxidEnd {
		t.Errorf("inspect of %s: url %s, manifest %+v", b.URL, s.URL, s.Manifest)
	}
	var total int64
	for _, c := range s.ByTopLevel {
		total += c.Znodes
	}
	if total != b.Znodes || s.Truncated {
		t.Errorf("top-level counts add up to %d, archive has %d (truncated %v)", total, b.Znodes, s.Truncated)
	}
	// Per namespace: topics, subscriptions and ledgers as generated.
	type nsCounts struct{ topics, subs, offloaded, bkOnly int64 }
	want := map[string]nsCounts{}
	var subs, kept, dropped int64
	for _, tp := range sum.Topics {
		ns := strings.Join(strings.Split(strings.TrimPrefix(tp.Name, "persistent://"), "/")[:2], "/")
		c := want[ns]
		c.topics++
		c.subs += int64(len(tp.Cursors))
		c.offloaded += int64(len(tp.Kept))
		c.bkOnly += int64(len(tp.Dropped))
		want[ns] = c
		subs += int64(len(tp.Cursors))
		kept += int64(len(tp.Kept))
		dropped += int64(len(tp.Dropped))
	}
	got := map[string]nsCounts{}
	for _, tn := range s.Tenants {
		for _, ns := range tn.Namespaces {
			if ns.Topics > 0 || ns.Subscriptions > 0 {
				got[ns.Name] = nsCounts{ns.Topics, ns.Subscriptions, ns.LedgersOffloaded, ns.LedgersBookKeeperOnly}
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("per namespace: %d namespaces with topics, want %d", len(got), len(want))
		for ns, w := range want {
			if got[ns] != w {
				t.Errorf("  %s: %+v, want %+v", ns, got[ns], w)
			}
		}
	}
	if s.Topics != int64(len(sum.Topics)) || s.Subscriptions != subs || s.LedgersOffloaded != kept || s.LedgersBookKeeperOnly != dropped {
		t.Errorf("topics %d subscriptions %d offloaded %d BookKeeper-only %d, want %d %d %d %d",
			s.Topics, s.Subscriptions, s.LedgersOffloaded, s.LedgersBookKeeperOnly, len(sum.Topics), subs, kept, dropped)
	}
	// What a restore keeps and drops, as the restore tests expect it from the generator.
	e := restoretest.Expect(sum)
	p := s.Restore
	var bkBound int64
	for _, n := range p.BookKeeperBoundSkipped {
		bkBound += n
	}
	if p.Znodes != b.Znodes || p.LedgersKept != e.LedgersKept || p.LedgersDropped != e.LedgersDropped || p.CursorsReset != e.CursorsReset ||
		p.TopicsWithDataLossCount != int64(len(e.TopicsWithDataLoss)) || p.SchemasToRegister.Count != e.SchemasToRegister ||
		p.CompactionReset.Count != e.CompactionReset || p.StaleCursors.Count != e.StaleCursors || bkBound != e.BookKeeperBound ||
		p.LedgerIDFloor.Highest > e.FloorAbove || p.LedgerIDFloor.FirstID <= e.FloorAbove {
		t.Errorf("restore plan %+v, want %+v", p, e)
	}
}
